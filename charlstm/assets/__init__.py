"""The default corpus, recipe and model, so that `charlstm train` and `charlstm sample` work with no
arguments, and the presets (configs/*.yaml, see presets.py). In the repository these are symbolic links
to data/ and configs/ (presets/ links the whole directory); an installed wheel holds copies."""

import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "rooms-names-train.txt"  # data/rooms-names-train.txt: stories with names drawn anew for each
CONFIG = HERE / "presets" / "rooms-names-quick.yaml"  # configs/rooms-names-quick.yaml
CLOZE = HERE / "rooms-cloze-realnames.tsv"  # data/rooms-cloze-realnames.tsv: real given names, never trained on
MODEL = HERE / "rooms.npz"  # data/rooms.npz
