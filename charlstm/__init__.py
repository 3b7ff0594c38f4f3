"""charlstm: character-level recurrent language models in pure NumPy."""

__version__ = "0.1.0"
