"""The PyTorch engine (train.engine: torch): a run's steps computed by PyTorch on a CPU or a GPU
(train.device), and under torchrun by many processes on many machines, with PyTorch's own
DistributedDataParallel. Imported only when asked for: PyTorch is an optional extra.

The model is charlstm's, as PyTorch's modules compute it: one-hot characters into nn.LSTM, nn.GRU or
nn.RNN (model.dropout between layers, as their `dropout`), nn.Dropout (model.decoder_dropout) and an
nn.Linear decoder, cross-entropy. Its parameters are charlstm's by name and layout (a checkpoint's model
is its state_dict), and the optimizers are torch.optim's, which optim.py defines exactly, state slots
included; so the NumPy TrainState and the engine's tensors copy into each other name for name (adopt,
pull). Clipping and the moving average are optim.py's, computed on the device (the norm in float64).
Weights, optimizer state and average stay on the device between pulls; a step's one transfer back is
its loss and gradient norm, which the trainer reports and checks.

Many processes (torchrun): each trains its share of the batch's B streams (B/P of them, as parallel.py
cuts them) and keeps their carried state until a pull gathers it. The loss of a share is scaled so that
DDP's average of the gradients is the gradient of the whole batch's mean loss: one process with the full
batch, up to float rounding. Every process validates the same text (no one waits), and all agree on
every stop, so a signal to any process stops all of them at the same step. gloo on CPUs, NCCL on GPUs.

What differs from the NumPy engine: float32 rounding, and dropout masks, drawn from PyTorch's generator
(seeded by train.seed, the step and the process: repeatable on a CPU, as far as cuDNN is on a GPU).
"""

import collections
import math
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import evaluate, model
from .cells import CELLS
from .errors import ConfigError

MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}  # the cells PyTorch has
STOPS = (None, "time", "signal")  # reasons to stop, the least pressing first


OPTIMIZERS = {  # optim.OPTIMIZERS' counterparts in torch.optim, made for the parameters ps and an OptimConfig c
    "adam": lambda ps, c: torch.optim.Adam(ps, c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay),
    "adamw": lambda ps, c: torch.optim.AdamW(ps, c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay),
    "sgd": lambda ps, c: torch.optim.SGD(ps, c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                         weight_decay=c.weight_decay),
    "rmsprop": lambda ps, c: torch.optim.RMSprop(ps, c.lr, alpha=c.alpha, eps=c.eps, weight_decay=c.weight_decay,
                                                 momentum=c.momentum, centered=c.centered),
}
COUNTS_STEPS = ("adam", "adamw", "rmsprop")  # those whose state holds a "step" besides optim.py's slots


def check_device(device):
    """A ConfigError unless PyTorch can train on device here."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device cuda: PyTorch finds no CUDA device here (torch.cuda.is_available() is False)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device mps: PyTorch finds no Apple GPU here (torch.backends.mps.is_available() "
                          "is False)")


def _lengths(mask, share):
    """(B',) lengths, as a CPU tensor, of this process's streams when every one is padded at its end (the
    case model.packing takes), else None."""
    if mask is None:
        return None
    _, lengths = model.packing(mask[:, share])  # sorted longest first, when a packing applies
    if lengths is None:
        return None
    return torch.from_numpy(np.count_nonzero(mask[:, share], axis=0).astype(np.int64))


class CharModel(torch.nn.Module):
    """charlstm's language model as PyTorch modules, named so that its state_dict is a checkpoint's model:
    lstm.weight_ih_l0 ... decoder.bias (gru. or rnn. for those cells)."""

    def __init__(self, spec, layer_dropout=0.0, output_dropout=0.0):
        super().__init__()
        self.cell, self.vocab = spec.cell, spec.vocab
        # the Spec fields the cell takes (nn.RNN's nonlinearity) are the module's keyword arguments too
        options = {name: getattr(spec, name) for name in getattr(CELLS[spec.cell], "OPTIONS", ())}
        recurrent = MODULES[spec.cell](spec.vocab, spec.hidden, spec.layers,
                                       dropout=layer_dropout if spec.layers > 1 else 0.0, **options)
        setattr(self, spec.cell, recurrent)
        self.output_dropout = torch.nn.Dropout(output_dropout)
        self.decoder = torch.nn.Linear(spec.hidden, spec.vocab)

    def forward(self, x, state=None, lengths=None):
        """x (T, B) character ids; state: one (L, B, H) tensor per entry of the cell's STATE, or None for
        zeros; lengths: (B,) characters each stream reads when they are padded at their end (lines mode), or
        None. Returns the logits (T, B, V) and the final state, a tuple like the one given: with lengths,
        each stream's state after its own last character, as the NumPy engine leaves it (packed sequences
        also skip the padding, as model.forward does)."""
        recurrent = getattr(self, self.cell)
        recurrent.flatten_parameters()  # cuDNN wants its weights in one block; nothing to do on a CPU
        if state is not None:
            state = state if self.cell == "lstm" else state[0]
        inputs = F.one_hot(x, self.vocab).to(self.decoder.weight.dtype)  # (T, B, V)
        if lengths is None:
            out, final = recurrent(inputs, state)  # (T, B, H)
        else:
            packed = pack_padded_sequence(inputs, lengths, enforce_sorted=False)
            out, final = recurrent(packed, state)
            out, _ = pad_packed_sequence(out, total_length=x.shape[0])  # zeros where the streams have ended
        return self.decoder(self.output_dropout(out)), final if isinstance(final, tuple) else (final,)


class TorchEngine:
    """The engine interface of engine.py, computed by PyTorch on cfg.train.device; under torchrun, one
    of its processes."""

    def __init__(self, spec, cfg):
        if spec.cell not in MODULES:
            raise ConfigError(f"model.cell {spec.cell} has no PyTorch module; the torch engine trains "
                              f"{', '.join(MODULES)}")
        if cfg.optim.name not in OPTIMIZERS:
            raise ConfigError(f"optim.name {cfg.optim.name} has no torch.optim counterpart here; the torch engine "
                              f"runs {', '.join(OPTIMIZERS)}")
        self.spec, self.cfg = spec, cfg
        self.workers = int(os.environ.get("WORLD_SIZE", "1"))  # processes, as torchrun started them
        self.rank = int(os.environ.get("RANK", "0"))
        self.main = self.rank == 0
        self.joined = False  # whether this engine began the process group, and so ends it
        # The tensors of the last collectives, kept: gloo's worker threads let go of a collective's tensors
        # a moment after it completes, and the last reference to a tensor Python made is let go with the
        # GIL. On a process that exits right after its last collective (rank 1 at the end of a run), that
        # moment can fall in the interpreter's shutdown, where taking the GIL ends the thread inside C++:
        # "terminate called without an active exception", and the process aborts. Kept here, a tensor's
        # last reference is Python's, dropped by the main thread. (destroy_process_group does not end the
        # threads: the DDP wrapper holds on to the group.) At most two collectives run at once.
        self.sent = collections.deque(maxlen=4)
        B, device = cfg.data.batch, cfg.train.device
        if self.workers > 1:
            if B < self.workers:
                raise ConfigError(f"data.batch {B} is less than the {self.workers} processes torchrun started; each "
                                  f"trains a share of the batch's streams")
            if device == "mps":
                raise ConfigError("torchrun with train.device mps: PyTorch's process groups do not serve Apple GPUs")
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device == "cuda" else "gloo")
                self.joined = True
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if device == "cuda" else device)
        if device == "cuda":
            torch.cuda.set_device(self.device)
        bounds = np.linspace(0, B, self.workers + 1).astype(int)
        self.share = slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))  # this process's streams
        self.described = f"the torch engine on {self.device}" + (f", {self.workers} processes (DDP, "
                                                                 f"{dist.get_backend()})" if self.workers > 1 else "")
        m = cfg.model
        self.net = CharModel(spec, m.dropout, m.decoder_dropout).to(self.device)
        self.params = dict(self.net.named_parameters())
        self.model = self.net  # what the step calls: the net, or DDP around it
        self.optimizer = None
        self.average = None  # a CharModel holding the moving average of the weights, with optim.ema
        self.step_count = 0

    # ------------------------------------------------------------------------------------ state in, out

    def adopt(self, ts):
        """Copy the TrainState's weights, optimizer state and average to the device, and train them."""
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(torch.from_numpy(ts.params[name]))
        if self.workers > 1:  # DDP starts from rank 0's weights: the same as every process's here
            self.model = DistributedDataParallel(self.net, device_ids=[self.device.index] if self.device.type == "cuda"
                                                 else None)
        self.optimizer = OPTIMIZERS[self.cfg.optim.name](list(self.params.values()), self.cfg.optim)
        self.step_count = ts.optimizer.step_count
        for name, p in self.params.items():
            state = {slot: self._tensor(arrays[name]) for slot, arrays in ts.optimizer.state.items()}
            if self.cfg.optim.name in COUNTS_STEPS:
                state["step"] = torch.tensor(float(self.step_count))  # on the CPU, where torch.optim keeps it
            self.optimizer.state[p] = state
        if ts.optimizer.average is not None:
            self.average = CharModel(self.spec).to(self.device)
            with torch.no_grad():
                for name, a in self.average.named_parameters():
                    a.copy_(torch.from_numpy(ts.optimizer.average[name]))

    def pull(self, ts):
        """Copy weights, optimizer state, average and the carried state back into the TrainState's arrays
        (the carried state gathered from every process: collective)."""
        with torch.no_grad():
            for name, p in self.params.items():
                ts.params[name][...] = p.detach().cpu().numpy()
                state = self.optimizer.state.get(p, {})
                for slot, arrays in ts.optimizer.state.items():
                    if slot in state:
                        arrays[name][...] = state[slot].cpu().numpy()
            ts.optimizer.step_count = self.step_count
            if self.average is not None:
                for name, a in self.average.named_parameters():
                    ts.optimizer.average[name][...] = a.detach().cpu().numpy()
        if not isinstance(ts.state[0], np.ndarray):  # tensors of this process's streams: the whole batch's
            full = []
            for s in ts.state:
                whole = torch.zeros((s.shape[0], self.cfg.data.batch, s.shape[2]), dtype=s.dtype, device=self.device)
                whole[:, self.share] = s
                if self.workers > 1:
                    dist.all_reduce(whole)  # each process fills its own streams; the sum is all of them
                    self.sent.append(whole)
                full.append(whole.cpu().numpy())
            ts.state = tuple(full)

    def _tensor(self, a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def _carried(self, state):
        """The state to start a window from, on the device: numpy arrays of the whole batch (a zero state,
        a restored or pulled one) cut to this process's streams, or the tensors the last step left."""
        if isinstance(state[0], np.ndarray):
            return tuple(self._tensor(s[:, self.share]) for s in state)
        return state

    # ------------------------------------------------------------------------------------------ the step

    def step(self, ts, window, lr, clip, dropout=None):
        """One optimizer step (engine.py); every process calls it with the whole batch's window."""
        x, y = (self._tensor(a[:, self.share].astype(np.int64)) for a in (window.x, window.y))
        mask = None if window.mask is None else self._tensor(window.mask[:, self.share])
        total = float(window.x.size if window.mask is None else window.mask.sum(dtype=np.float64)) or 1.0
        if dropout is not None:  # this step's masks, and this process's own
            torch.manual_seed(int(np.random.SeedSequence([*dropout.seed, self.rank]).generate_state(1)[0]))
        self.model.train()
        logits, final = self.model(x, self._carried(ts.state), _lengths(window.mask, self.share))
        nll = F.cross_entropy(logits.reshape(-1, self.spec.vocab), y.reshape(-1), reduction="none")  # (T·B',)
        counted = nll if mask is None else nll * mask.reshape(-1)
        # DDP averages the processes' gradients: scaled by P, each share's sum over the batch's targets adds
        # up to the gradient of the batch's mean loss
        self.optimizer.zero_grad(set_to_none=True)
        (counted.sum() * (self.workers / total)).backward()
        loss = counted.detach().double().sum() / total  # this process's part of the batch's mean loss
        if self.workers > 1:
            dist.all_reduce(loss)
            self.sent.append(loss)
        grads = [p.grad for p in self.params.values()]
        norm = torch.stack([g.double().square().sum() for g in grads]).sum().sqrt()
        loss, norm = torch.stack([loss, norm]).tolist()
        if not math.isfinite(loss):
            return loss, math.nan
        if not math.isfinite(norm):
            return loss, norm
        coef = clip / (norm + 1e-6)
        if clip > 0 and coef < 1:  # as optim.clip_by_global_norm
            for g in grads:
                g.mul_(coef)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.step_count += 1
        if self.average is not None:  # as optim.Optimizer.update
            beta = min(self.cfg.optim.ema, (1 + self.step_count) / (10 + self.step_count))
            with torch.no_grad():
                for a, p in zip(self.average.parameters(), self.params.values()):
                    a.mul_(beta)
                    a.add_(p * (1 - beta))
        ts.state = tuple(s.detach() for s in final)
        return loss, norm

    def agree(self, stop):
        """The most pressing of the processes' reasons to stop (STOPS)."""
        if self.workers == 1:
            return stop
        flag = torch.tensor([STOPS.index(stop)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.sent.append(flag)
        return STOPS[int(flag.item())]

    def score(self, ts, streams, window):
        """evaluate.score of the model (the average with optim.ema), on the device."""
        net = self.average if self.average is not None else self.net
        net.eval()

        def forward(win, state):
            x, y = (self._tensor(a.astype(np.int64)) for a in (win.x, win.y))
            logits, final = net(x, state)
            nll = F.cross_entropy(logits.reshape(-1, self.spec.vocab), y.reshape(-1), reduction="none")
            counted = nll.double() * self._tensor(win.mask).reshape(-1).double()
            return counted.reshape(win.mask.shape).sum(dim=0).cpu().numpy(), final  # each stream's nats

        try:
            with torch.no_grad():
                return evaluate.score_with(forward, streams, window)
        finally:
            net.train()

    def close(self):
        if self.joined:
            dist.destroy_process_group()
            self.joined = False
