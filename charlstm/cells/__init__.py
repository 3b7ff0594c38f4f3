"""Recurrent cells. Each is a module with the same interface, so the model never asks which one it runs:

    GATES            pre-activation blocks per layer (LSTM 4, GRU 3, RNN 1)
    STATE            names of the carried state arrays, e.g. ("h", "c")
    pack(...)        PyTorch-layout weights -> arrays laid out for the forward pass
    forward(...)     a window of T steps -> outputs, final state, cache
    backward(...)    cache, output gradients -> pre-activation gradients
    advance(...)     one step for sampling, updating the state in place
"""

from . import gru, lstm, rnn

CELLS = {"lstm": lstm, "gru": gru, "rnn": rnn}
