"""A fourth cell, for tests only: the vanilla RNN's maths (charlstm.cells.rnn) under another name, with the
facts every cell declares written out here, as a new cell's module writes them (see charlstm/cells/)."""

from charlstm.cells.rnn import backward, forward, history, pack, stepper  # noqa: F401  (the cell interface)

GATES = 1
STATE = ("h",)
MEMORY = "h"
GATE_BLOCKS = {}
FORGET_GATE = None
INPUT_GATE = None
