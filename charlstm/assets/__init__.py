"""The default corpus, recipe and model, so that `charlstm train` and `charlstm sample` work with no
arguments. In the repository these are symbolic links to data/ and configs/; an installed wheel holds
copies."""

import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "rooms-train.txt"  # data/rooms-train.txt
CONFIG = HERE / "rooms.yaml"  # configs/rooms.yaml
CLOZE = HERE / "rooms-cloze.tsv"  # data/rooms-cloze.tsv
MODEL = HERE / "rooms.npz"  # data/rooms.npz
