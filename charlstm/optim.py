"""Optimizers, defined exactly as PyTorch defines them, gradient clipping and learning-rate schedules.

An optimizer keeps its state as named arrays with the parameter names as keys (`exp_avg`, `exp_avg_sq`,
`momentum_buffer`, ... the names PyTorch's state_dict uses), so checkpoints can store it flat and an update
is a loop over keys. Updates happen in place.

Each optimizer is a small class in OPTIMIZERS, the one registry: its options (each becomes an optim.* key
of the config), those a resumed run cannot change, its state slots and its update rule. Weight decay and
the moving average of the weights are the same for all, so the `Optimizer` that runs one of them does
them: λ below is optim.weight_decay, added to the gradient or (AdamW) decoupled.

With `ema` = β > 0 the Optimizer also keeps an exponential moving average of the weights, θ̄ ← βₜθ̄ + (1-βₜ)θ
after step t, with βₜ = min(β, (1 + t) / (10 + t)) (θ̄ starts at the initial weights): Polyak averaging,
which irons out the step-to-step noise of the weights. The warm-up of βₜ (TensorFlow's
ExponentialMovingAverage with num_updates) keeps the initial weights from lingering in the average (see
docs/memory.md). A run evaluates and saves the average as its model; θ goes on being the weights the
steps move.
"""

import math
from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

DEFAULT = "adam"


@dataclass(frozen=True)
class Option:
    """An optimizer's setting, the config key optim.<name>."""

    name: str
    kind: Any  # float, bool or Tuple[float, float]
    default: Any
    doc: str
    within: str = ""  # "positive", or "unit" for [0, 1) (each element of a pair); "" for no bound


MOMENTUM = Option("momentum", float, 0.0, "momentum", "unit")
EPS = Option("eps", float, 1e-8, "denominator guard", "positive")
BETAS = Option("betas", Tuple[float, float], (0.9, 0.999), "moment decay rates", "unit")


class Rule:
    """An update rule, made for one OptimConfig. A subclass declares its options, the options that shape
    its state (which a resumed run cannot change) and whether weight decay is decoupled, and defines its
    slots and its step."""

    name, label = "", ""  # the config's optim.name, and how docs name it
    options = ()  # Option, ...
    frozen = ()  # names of options that decide which slots exist
    decoupled_decay = False  # θ ← θ(1 - ηλ) before the step, instead of g ← g + λθ

    def __init__(self, config):
        self.config = config

    @staticmethod
    def check(config):
        """A message for a combination of settings this rule cannot run, or None."""
        return None

    def slots(self):
        """The names of its state arrays, each shaped like the parameters."""
        return ()

    def step(self, p, g, s, lr, t):
        """Update parameter p in place from gradient g (which may be modified) at step t (from 1);
        s: {slot: this parameter's array}."""
        raise NotImplementedError


class SGD(Rule):
    """g ← g + λθ;  b ← μb + g (b = g at the first step);  g ← g + μb if nesterov else b;  θ ← θ - ηg"""

    name, label = "sgd", "SGD"
    options = (MOMENTUM, Option("nesterov", bool, False, "Nesterov momentum"))
    frozen = ("momentum",)

    @staticmethod
    def check(config):
        if config.nesterov and config.momentum == 0:
            return "optim.nesterov needs optim.momentum > 0"
        return None

    def slots(self):
        return ("momentum_buffer",) if self.config.momentum else ()

    def step(self, p, g, s, lr, t):
        c = self.config
        if c.momentum:
            b = s["momentum_buffer"]
            if t == 1:
                b[...] = g
            else:
                b *= c.momentum
                b += g
            if c.nesterov:
                g = g + c.momentum * b
            else:
                g = b
        p -= lr * g


class RMSProp(Rule):
    """g ← g + λθ;  v ← αv + (1-α)g²;  [centered: ḡ ← αḡ + (1-α)g;  v̂ = v - ḡ²]
    d = √v̂ + ε;  with momentum: b ← μb + g/d, θ ← θ - ηb;  without: θ ← θ - ηg/d"""

    name, label = "rmsprop", "RMSProp"
    options = (Option("alpha", float, 0.99, "squared-gradient decay", "unit"), MOMENTUM,
               Option("centered", bool, False, "normalise by the gradient's variance instead of its second moment"),
               EPS)
    frozen = ("momentum", "centered")

    def slots(self):
        c = self.config
        return ("square_avg",) + (("grad_avg",) if c.centered else ()) + (("momentum_buffer",) if c.momentum else ())

    def step(self, p, g, s, lr, t):
        c = self.config
        v = s["square_avg"]
        v *= c.alpha
        v += (1 - c.alpha) * g * g
        if c.centered:
            gbar = s["grad_avg"]
            gbar *= c.alpha
            gbar += (1 - c.alpha) * g
            denom = np.sqrt(v - gbar * gbar)
        else:
            denom = np.sqrt(v)
        denom += c.eps
        if c.momentum:
            b = s["momentum_buffer"]
            b *= c.momentum
            b += g / denom
            p -= lr * b
        else:
            p -= lr * (g / denom)


class Adam(Rule):
    """g ← g + λθ;  m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;  θ ← θ - η/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε)"""

    name, label = "adam", "Adam"
    options = (BETAS, EPS)

    def slots(self):
        return ("exp_avg", "exp_avg_sq")

    def step(self, p, g, s, lr, t):
        c = self.config
        beta1, beta2 = c.betas
        m, v = s["exp_avg"], s["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        bias1 = 1 - beta1 ** t
        bias2 = 1 - beta2 ** t
        denom = np.sqrt(v)
        denom /= math.sqrt(bias2)
        denom += c.eps
        delta = m / denom
        delta *= lr / bias1
        p -= delta


class AdamW(Adam):
    """θ ← θ(1 - ηλ), then Adam with λ = 0 (decoupled weight decay)"""

    name, label = "adamw", "AdamW"
    decoupled_decay = True


OPTIMIZERS = {rule.name: rule for rule in (Adam, AdamW, SGD, RMSProp)}


def options():
    """Every registered optimizer's options, each once, in registry order, with docs naming the optimizers
    that use them ("SGD/RMSProp: momentum"): the optimizer-specific keys of OptimConfig. Optimizers that
    share an option share one declaration of it."""
    found = {}
    for rule in OPTIMIZERS.values():
        for option in rule.options:
            users = found.setdefault(option.name, (option, []))
            assert users[0] == option, f"two declarations of optim.{option.name}"
            users[1].append(rule.label)
    return [Option(o.name, o.kind, o.default, f"{'/'.join(labels)}: {o.doc}", o.within)
            for o, labels in found.values()]


def frozen_on_resume():
    """optim.* keys a resumed run cannot change: those that shape the optimizer's state."""
    frozen = {key for rule in OPTIMIZERS.values() for key in rule.frozen}
    return ("name", *sorted(frozen), "ema")


class Optimizer:
    """The optimizer an OptimConfig names, with weight decay and the moving average of the weights."""

    def __init__(self, config, params):
        self.config = config
        self.name = config.name
        self.rule = OPTIMIZERS[config.name](config)
        self.step_count = 0
        self.state = {slot: {k: np.zeros_like(p) for k, p in params.items()} for slot in self.rule.slots()}
        self._tmp = {k: np.empty_like(p) for k, p in params.items()}
        self.average = {k: p.copy() for k, p in params.items()} if config.ema else None

    def update(self, params, grads, lr):
        """One step: params updated in place from grads (which may be modified)."""
        self.step_count += 1
        c = self.config
        beta = min(c.ema, (1 + self.step_count) / (10 + self.step_count))  # the average's decay this step
        for k, p in params.items():
            g, tmp = grads[k], self._tmp[k]
            if c.weight_decay and self.rule.decoupled_decay:
                p *= 1 - lr * c.weight_decay
            elif c.weight_decay:
                np.multiply(p, c.weight_decay, out=tmp)
                g = np.add(g, tmp, out=tmp)
            self.rule.step(p, g, {slot: arrays[k] for slot, arrays in self.state.items()}, lr, self.step_count)
            if self.average is not None:
                a = self.average[k]
                a *= beta
                a += np.multiply(p, 1 - beta, out=self._tmp[k])

    def state_arrays(self):
        """Flat {"slot.param": array} for checkpoints."""
        return {f"{slot}.{k}": a for slot, arrays in self.state.items() for k, a in arrays.items()}

    def load_state_arrays(self, arrays, step_count):
        for slot, per_param in self.state.items():
            for k, a in per_param.items():
                a[...] = arrays[f"{slot}.{k}"]
        self.step_count = step_count


def global_norm(grads):
    """√(Σ‖g‖²) over all gradients, accumulated in float64."""
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


def clip_by_global_norm(grads, max_norm):
    """Scale all gradients in place so their global norm is at most max_norm, as PyTorch's
    clip_grad_norm_ does (coefficient max_norm / (norm + 1e-6), never above 1). Returns the norm before."""
    norm = global_norm(grads)
    if max_norm > 0:
        coef = max_norm / (norm + 1e-6)
        if coef < 1:
            for g in grads.values():
                g *= coef
    return norm


def learning_rate(config, step, epoch, total_steps):
    """The rate for optimizer step `step` (0-based) in `epoch` (0-based).

    constant: lr.  step: lr · decay_rate^⌊epoch / decay_every⌋ (char-rnn's decay by epochs), or
    lr · decay_rate^⌊step / decay_steps⌋ when decay_steps is set.
    cosine: linear warmup over `warmup` steps, then half a cosine from lr down to min_lr at total_steps.
    """
    c = config
    if c.schedule == "step" and c.decay_steps:
        return c.lr * c.decay_rate ** (step // c.decay_steps)
    if c.schedule == "step":
        return c.lr * c.decay_rate ** (epoch // c.decay_every)
    if c.schedule == "cosine":
        if step < c.warmup:
            return c.lr * (step + 1) / c.warmup
        span = max(1, total_steps - c.warmup)
        progress = min(1.0, (step - c.warmup) / span)
        return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + math.cos(math.pi * progress))
    return c.lr

