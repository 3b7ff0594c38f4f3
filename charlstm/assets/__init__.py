"""The default corpus, recipe and model, so that `charlstm train` and `charlstm sample` work with no
arguments, and the presets (configs/*.yaml, see presets.py). In the repository these are symbolic links
to data/ and configs/ (presets/ links the whole directory); an installed wheel holds copies."""

import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "rooms-train.txt"  # data/rooms-train.txt
CONFIG = HERE / "presets" / "rooms.yaml"  # configs/rooms.yaml
CLOZE = HERE / "rooms-cloze-fillers.tsv"  # data/rooms-cloze-fillers.tsv: the twelve, fillers never trained on
MODEL = HERE / "rooms.npz"  # data/rooms.npz
