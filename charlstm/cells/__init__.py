"""Recurrent cells. Each is a module with the same interface, so nothing outside this package asks which
one it runs; a new cell is one module here and one line in CELLS:

    GATES            pre-activation blocks per layer (LSTM 4, GRU 3, RNN 1)
    STATE            names of the carried state arrays, the output h first, e.g. ("h", "c")
    MEMORY           the entry of STATE that holds the memory (LSTM "c"; GRU and RNN "h")
    GATE_BLOCKS      {gate name: block} of the activations `step` leaves in its gates buffer (for inspect)
    FORGET_GATE      block, in PyTorch's parameter order, of the gate that keeps the old state; None if none
    INPUT_GATE       block, in PyTorch's parameter order, of the gate that writes the new state; None if none
    OUTPUT_GATE      block, in PyTorch's parameter order, of the gate that reads the memory out; None if none
                     (optional: a cell without it has none, as far as model.open_gates is concerned)
    pack(...)        PyTorch-layout weights -> arrays laid out for the forward pass
    forward(...)     a window of T steps -> outputs, final state, cache
    backward(...)    cache, output gradients -> pre-activation gradients
    stepper(packed, state, below=None)  -> advance(gates) -> h: one step for sampling, updating the
                     layer's state in place; gates (B, G) holds the input projection on entry for the
                     first layer (below None), or is filled from `below`, the (B, in) output of the
                     layer under it; on exit it holds the activations (GATE_BLOCKS), which inspect reads
    history(hs, cache)  the state after every step of a window, for reading prompts side by side

The registry's key is the cell's name: `model.cell` in the config, and the prefix of its parameters
(the name of PyTorch's module: lstm.weight_ih_l0).
"""

from . import gru, lstm, rnn

CELLS = {"lstm": lstm, "gru": gru, "rnn": rnn}
DEFAULT = "lstm"
