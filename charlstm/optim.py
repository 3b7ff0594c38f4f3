"""Optimizers, defined exactly as PyTorch defines them, gradient clipping and learning-rate schedules.

An optimizer keeps its state as named arrays with the parameter names as keys (`exp_avg`, `exp_avg_sq`,
`momentum_buffer`, ... the names PyTorch's state_dict uses), so checkpoints can store it flat and an update
is a loop over keys. Updates happen in place.

    SGD       g ← g + λθ;  b ← μb + g (b = g at the first step);  g ← g + μb if nesterov else b;  θ ← θ - ηg
    RMSProp   g ← g + λθ;  v ← αv + (1-α)g²;  [centered: ḡ ← αḡ + (1-α)g;  v̂ = v - ḡ²]
              d = √v̂ + ε;  with momentum: b ← μb + g/d, θ ← θ - ηb;  without: θ ← θ - ηg/d
    Adam      g ← g + λθ;  m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²
              θ ← θ - η/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε)
    AdamW     θ ← θ(1 - ηλ), then Adam with λ = 0

With `ema` = β > 0 the optimizer also keeps an exponential moving average of the weights, θ̄ ← βₜθ̄ + (1-βₜ)θ
after step t, with βₜ = min(β, (1 + t) / (10 + t)) (θ̄ starts at the initial weights): Polyak averaging,
which irons out the step-to-step noise of the weights when the signal that shapes them is faint. The
warm-up of βₜ (TensorFlow's ExponentialMovingAverage with num_updates) keeps the average from dragging
the initial weights along: with β = 0.998 alone they would still weigh 37% at step 500 and 14% at step
1,000; with it, the average spans about the last t/9 steps until βₜ reaches β (step 4,490 for 0.998).
The average is what a run evaluates and saves as its model (see train.py); θ goes on being the weights
the steps move.
"""

import math

import numpy as np

SLOTS = {
    "sgd": ("momentum_buffer",),
    "rmsprop": ("square_avg", "grad_avg", "momentum_buffer"),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
}


class Optimizer:
    """One of SGD, RMSProp, Adam, AdamW, configured by an OptimConfig."""

    def __init__(self, config, params):
        self.config = config
        self.name = config.name
        self.step_count = 0
        self.state = {slot: {k: np.zeros_like(p) for k, p in params.items()} for slot in self.slots()}
        self._tmp = {k: np.empty_like(p) for k, p in params.items()}
        self.average = {k: p.copy() for k, p in params.items()} if config.ema else None

    def slots(self):
        c = self.config
        if self.name == "sgd":
            return ("momentum_buffer",) if c.momentum else ()
        if self.name == "rmsprop":
            return ("square_avg",) + (("grad_avg",) if c.centered else ()) + (("momentum_buffer",) if c.momentum else ())
        return SLOTS[self.name]

    def update(self, params, grads, lr):
        """One step: params updated in place from grads (which may be modified)."""
        self.step_count += 1
        c = self.config
        beta = min(c.ema, (1 + self.step_count) / (10 + self.step_count))  # the average's decay this step
        for k, p in params.items():
            g, tmp = grads[k], self._tmp[k]
            if c.weight_decay and self.name != "adamw":
                np.multiply(p, c.weight_decay, out=tmp)
                g = np.add(g, tmp, out=tmp)
            getattr(self, "_" + self.name)(k, p, g, lr)
            if self.average is not None:
                a = self.average[k]
                a *= beta
                a += np.multiply(p, 1 - beta, out=self._tmp[k])

    def _sgd(self, k, p, g, lr):
        c = self.config
        if c.momentum:
            b = self.state["momentum_buffer"][k]
            if self.step_count == 1:
                b[...] = g
            else:
                b *= c.momentum
                b += g
            if c.nesterov:
                g = g + c.momentum * b
            else:
                g = b
        p -= lr * g

    def _rmsprop(self, k, p, g, lr):
        c = self.config
        v = self.state["square_avg"][k]
        v *= c.alpha
        v += (1 - c.alpha) * g * g
        if c.centered:
            gbar = self.state["grad_avg"][k]
            gbar *= c.alpha
            gbar += (1 - c.alpha) * g
            denom = np.sqrt(v - gbar * gbar)
        else:
            denom = np.sqrt(v)
        denom += c.eps
        if c.momentum:
            b = self.state["momentum_buffer"][k]
            b *= c.momentum
            b += g / denom
            p -= lr * b
        else:
            p -= lr * (g / denom)

    def _adam(self, k, p, g, lr):
        c = self.config
        beta1, beta2 = c.betas
        m, v = self.state["exp_avg"][k], self.state["exp_avg_sq"][k]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        bias1 = 1 - beta1 ** self.step_count
        bias2 = 1 - beta2 ** self.step_count
        denom = np.sqrt(v)
        denom /= math.sqrt(bias2)
        denom += c.eps
        step = m / denom
        step *= lr / bias1
        p -= step

    def _adamw(self, k, p, g, lr):
        if self.config.weight_decay:
            p *= 1 - lr * self.config.weight_decay
        self._adam(k, p, g, lr)

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

    constant: lr.  step: lr · decay_rate^⌊epoch / decay_every⌋ (char-rnn's decay by epochs).
    cosine: linear warmup over `warmup` steps, then half a cosine from lr down to min_lr at total_steps.
    """
    c = config
    if c.schedule == "step":
        return c.lr * c.decay_rate ** (epoch // c.decay_every)
    if c.schedule == "cosine":
        if step < c.warmup:
            return c.lr * (step + 1) / c.warmup
        span = max(1, total_steps - c.warmup)
        progress = min(1.0, (step - c.warmup) / span)
        return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + math.cos(math.pi * progress))
    return c.lr


def frozen_on_resume():
    """optim.* keys a resumed run cannot change: they shape the optimizer's state."""
    return ("name", "momentum", "centered", "ema")
