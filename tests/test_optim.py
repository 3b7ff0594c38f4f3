"""Optimizers, gradient clipping and learning-rate schedules against their definitions.

Every optimizer is checked step by step against a reference written out here in plain NumPy, straight
from the pseudo-code of the torch.optim documentation (SGD, RMSprop, Adam, AdamW), with torch's state
names. The reference is deliberately naive: new arrays every step, no in-place tricks, no shared code
with charlstm.optim.
"""

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from charlstm.config import OptimConfig
from charlstm.optim import Optimizer, clip_by_global_norm, global_norm, learning_rate

SHAPES = {"w": (3, 4), "b": (4,), "emb": (2, 3, 2)}
LRS = [0.1, 0.05, 0.2, 0.01, 0.07, 0.03]  # one rate per step: the rate passed to update() changes every step
RTOL, ATOL = 1e-12, 1e-14

# Every option that changes the algorithm, alone and combined. eps is made large enough that where it is
# added (outside the square root, after bias correction) shows at 1e-12.
CASES = {
    "sgd": dict(name="sgd"),
    "sgd-wd": dict(name="sgd", weight_decay=0.1),
    "sgd-momentum": dict(name="sgd", momentum=0.9),
    "sgd-momentum-wd": dict(name="sgd", momentum=0.7, weight_decay=0.05),
    "sgd-nesterov": dict(name="sgd", momentum=0.9, nesterov=True),
    "sgd-nesterov-wd": dict(name="sgd", momentum=0.8, nesterov=True, weight_decay=0.05),
    "rmsprop": dict(name="rmsprop", alpha=0.9, eps=1e-3),
    "rmsprop-default": dict(name="rmsprop"),
    "rmsprop-centered": dict(name="rmsprop", alpha=0.8, eps=1e-2, centered=True),
    "rmsprop-momentum": dict(name="rmsprop", alpha=0.95, eps=1e-3, momentum=0.9),
    "rmsprop-wd": dict(name="rmsprop", alpha=0.9, eps=1e-3, weight_decay=0.1),
    "rmsprop-centered-momentum-wd": dict(name="rmsprop", alpha=0.9, eps=1e-2, centered=True, momentum=0.5,
                                         weight_decay=0.05),
    "adam": dict(name="adam", betas=(0.9, 0.99), eps=1e-3),
    "adam-default": dict(name="adam"),
    "adam-wd": dict(name="adam", betas=(0.8, 0.95), eps=1e-2, weight_decay=0.1),
    "adamw": dict(name="adamw", betas=(0.9, 0.99), eps=1e-3, weight_decay=0.1),
    "adamw-strong-wd": dict(name="adamw", betas=(0.85, 0.9), eps=1e-2, weight_decay=2.0),
    "adamw-no-wd": dict(name="adamw", betas=(0.9, 0.999), eps=1e-3),
}

# torch's state names for each option set (what state_arrays() is keyed by, before the ".param" part)
EXPECTED_SLOTS = {
    "sgd": set(), "sgd-wd": set(),
    "rmsprop": {"square_avg"}, "rmsprop-default": {"square_avg"}, "rmsprop-wd": {"square_avg"},
    "rmsprop-centered": {"square_avg", "grad_avg"},
    "rmsprop-momentum": {"square_avg", "momentum_buffer"},
    "rmsprop-centered-momentum-wd": {"square_avg", "grad_avg", "momentum_buffer"},
}


def config(case):
    return OptimConfig(**CASES[case])


def make_problem(seed, n_steps=len(LRS), dtype=np.float64):
    """Initial parameters and one fresh random gradient dict per step, each step at its own scale."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}
    grads = [{k: (rng.normal(size=s) * rng.uniform(0.1, 3.0)).astype(dtype) for k, s in SHAPES.items()}
             for _ in range(n_steps)]
    return params, grads


def copy(arrays):
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


# ----------------------------------------------------------------------------------------------------------
# The reference: torch.optim's documented algorithms, one parameter at a time.
#
#   SGD      g = g + wd·θ;  b = g at t=1, else b = μ·b + g;  g = g + μ·b (nesterov) or b;  θ = θ - lr·g
#   RMSprop  g = g + wd·θ;  v = α·v + (1-α)·g²;  centered: ḡ = α·ḡ + (1-α)·g, ṽ = v - ḡ²;
#            momentum: b = μ·b + g/(√ṽ + ε), θ = θ - lr·b;  else θ = θ - lr·g/(√ṽ + ε)
#   Adam     g = g + wd·θ;  m = β₁·m + (1-β₁)·g;  v = β₂·v + (1-β₂)·g²;  m̂ = m/(1-β₁ᵗ);  v̂ = v/(1-β₂ᵗ);
#            θ = θ - lr·m̂/(√v̂ + ε)
#   AdamW    θ = θ·(1 - lr·wd), then Adam without the g + wd·θ term
# ----------------------------------------------------------------------------------------------------------

def reference_step(opts, theta, grad, state, lr, t):
    """One step for one parameter: returns the new θ; `state` (torch's names) is replaced entry by entry."""
    name = opts["name"]
    wd = opts.get("weight_decay", 0.0)
    mu = opts.get("momentum", 0.0)
    g = grad
    if name == "sgd":
        if wd != 0:
            g = g + wd * theta
        if mu != 0:
            if t == 1:
                b = g.copy()
            else:
                b = mu * state["momentum_buffer"] + g
            state["momentum_buffer"] = b
            if opts.get("nesterov", False):
                g = g + mu * b
            else:
                g = b
        return theta - lr * g
    if name == "rmsprop":
        alpha, eps = opts.get("alpha", 0.99), opts.get("eps", 1e-8)
        if wd != 0:
            g = g + wd * theta
        v = alpha * state.get("square_avg", np.zeros_like(theta)) + (1 - alpha) * g ** 2
        state["square_avg"] = v
        v_tilde = v
        if opts.get("centered", False):
            g_avg = alpha * state.get("grad_avg", np.zeros_like(theta)) + (1 - alpha) * g
            state["grad_avg"] = g_avg
            v_tilde = v - g_avg ** 2
        if mu > 0:
            b = mu * state.get("momentum_buffer", np.zeros_like(theta)) + g / (np.sqrt(v_tilde) + eps)
            state["momentum_buffer"] = b
            return theta - lr * b
        return theta - lr * g / (np.sqrt(v_tilde) + eps)
    if name in ("adam", "adamw"):
        beta1, beta2 = opts.get("betas", (0.9, 0.999))
        eps = opts.get("eps", 1e-8)
        if name == "adamw":
            theta = theta * (1 - lr * wd)
        elif wd != 0:
            g = g + wd * theta
        m = beta1 * state.get("exp_avg", np.zeros_like(theta)) + (1 - beta1) * g
        v = beta2 * state.get("exp_avg_sq", np.zeros_like(theta)) + (1 - beta2) * g ** 2
        state["exp_avg"], state["exp_avg_sq"] = m, v
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    raise ValueError(name)


def reference_run(opts, params, grads, lrs):
    """Yields (θ dict, {slot: {param: array}}) after every step."""
    theta = copy(params)
    state = {k: {} for k in params}
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        theta = {k: reference_step(opts, theta[k], g[k], state[k], lr, t) for k in theta}
        by_slot = {}
        for k, slots in state.items():
            for slot, a in slots.items():
                by_slot.setdefault(slot, {})[k] = a
        yield theta, by_slot


# ----------------------------------------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_matches_reference_every_step(case):
    params, grads = make_problem(seed=sorted(CASES).index(case))
    theta = copy(params)
    opt = Optimizer(config(case), theta)
    ref = reference_run(CASES[case], params, grads, LRS)
    for t, (g, lr, (ref_theta, ref_state)) in enumerate(zip(grads, LRS, ref), start=1):
        opt.update(theta, copy(g), lr)
        for k in SHAPES:
            np.testing.assert_allclose(theta[k], ref_theta[k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{case}: parameter {k} after step {t}")
        assert set(opt.state) == set(ref_state), f"{case}: state slots"
        for slot, per_param in ref_state.items():
            for k, a in per_param.items():
                np.testing.assert_allclose(opt.state[slot][k], a, rtol=RTOL, atol=ATOL,
                                           err_msg=f"{case}: state {slot}.{k} after step {t}")
    assert t == len(LRS) >= 5
    # the parameters really moved (a test of a no-op optimizer against a no-op reference would pass)
    assert all(np.abs(theta[k] - params[k]).max() > 1e-3 for k in SHAPES)


def test_reference_options_make_a_difference():
    """Each option the cases toggle changes the trajectory, so a charlstm that ignored it would fail above."""
    params, grads = make_problem(seed=0)

    def final(opts):
        *_, (theta, _) = reference_run(opts, params, grads, LRS)
        return np.concatenate([theta[k].ravel() for k in SHAPES])

    pairs = [("sgd", "sgd-wd"), ("sgd", "sgd-momentum"), ("sgd-momentum", "sgd-nesterov"),
             ("rmsprop", "rmsprop-centered"), ("rmsprop", "rmsprop-momentum"), ("rmsprop", "rmsprop-wd"),
             ("adam", "adamw"), ("adam-wd", "adamw")]
    for a, b in pairs:
        assert not np.allclose(final(CASES[a]), final(CASES[b]), rtol=1e-6), (a, b)
    # AdamW's decay is decoupled: different from Adam's L2 penalty with the same coefficient
    adam_l2 = dict(CASES["adamw"], name="adam")
    assert not np.allclose(final(adam_l2), final(CASES["adamw"]), rtol=1e-6)
    # with the decay switched off the two are the same algorithm
    np.testing.assert_allclose(final(dict(CASES["adamw"], weight_decay=0.0)),
                               final(dict(CASES["adamw"], weight_decay=0.0, name="adam")), rtol=RTOL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_names_are_torchs(case):
    params, grads = make_problem(seed=1, n_steps=1)
    opt = Optimizer(config(case), params)
    opt.update(params, grads[0], 0.1)
    name = CASES[case]["name"]
    default = {"sgd": {"momentum_buffer"}, "adam": {"exp_avg", "exp_avg_sq"},
               "adamw": {"exp_avg", "exp_avg_sq"}}.get(name, set())
    slots = EXPECTED_SLOTS.get(case, default)
    assert set(opt.state_arrays()) == {f"{slot}.{k}" for slot in slots for k in SHAPES}
    for key, a in opt.state_arrays().items():
        assert a.shape == SHAPES[key.split(".", 1)[1]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_parameters_stay_float32_and_are_updated_in_place(case):
    params64, grads64 = make_problem(seed=7)
    params = {k: v.astype(np.float32) for k, v in params64.items()}
    grads = [{k: v.astype(np.float32) for k, v in g.items()} for g in grads64]
    start = copy(params)
    objects = {k: id(v) for k, v in params.items()}
    opt = Optimizer(config(case), params)
    for g, lr in zip(grads, LRS):
        opt.update(params, g, np.float64(lr) if lr == 0.05 else lr)  # a NumPy float64 rate as well
    assert {k: id(v) for k, v in params.items()} == objects
    assert all(params[k].dtype == np.float32 for k in SHAPES)
    assert all(a.dtype == np.float32 for a in opt.state_arrays().values())
    assert all(not np.array_equal(params[k], start[k]) for k in SHAPES)
    # and float32 follows the float64 trajectory of the same (float32-rounded) inputs
    *_, (ref, _) = reference_run(CASES[case], {k: v.astype(np.float64) for k, v in start.items()},
                                 [{k: v.astype(np.float64) for k, v in g.items()} for g in grads], LRS)
    for k in SHAPES:
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=f"{case}: {k}")


def test_update_works_in_place_on_views_of_one_buffer():
    """Parameters may be views into one flat buffer; the update must write through them."""
    flat = np.zeros(sum(math.prod(s) for s in SHAPES.values()))
    params, offset = {}, 0
    for k, s in SHAPES.items():
        n = math.prod(s)
        params[k] = flat[offset:offset + n].reshape(s)
        offset += n
    params0, grads = make_problem(seed=3)
    for k in SHAPES:
        params[k][...] = params0[k]
    opt = Optimizer(config("adamw"), params)
    for g, lr in zip(grads, LRS):
        opt.update(params, copy(g), lr)
    *_, (ref, _) = reference_run(CASES["adamw"], params0, grads, LRS)
    np.testing.assert_allclose(flat, np.concatenate([ref[k].ravel() for k in SHAPES]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_round_trip_resumes_bit_for_bit(case):
    params, grads = make_problem(seed=11)
    a_params = copy(params)
    a = Optimizer(config(case), a_params)
    for g, lr in zip(grads[:3], LRS[:3]):
        a.update(a_params, copy(g), lr)
    # what a checkpoint does: write the flat arrays and the step count to a file, read them back
    buf = io.BytesIO()
    np.savez(buf, **a.state_arrays())
    saved_step = a.step_count
    assert saved_step == 3
    buf.seek(0)
    with np.load(buf) as f:
        loaded = {k: f[k] for k in f.files}
    b_params = copy(a_params)
    b = Optimizer(config(case), b_params)
    b.load_state_arrays(loaded, saved_step)
    assert b.step_count == 3
    for g, lr in zip(grads[3:5], LRS[3:5]):
        a.update(a_params, copy(g), lr)
        b.update(b_params, copy(g), lr)
    for k in SHAPES:
        assert np.array_equal(a_params[k], b_params[k]), (case, k)
    a_state, b_state = a.state_arrays(), b.state_arrays()
    assert a_state.keys() == b_state.keys()
    for k in a_state:
        assert np.array_equal(a_state[k], b_state[k]), (case, k)
    # and both still agree with the uninterrupted reference
    *_, (ref, _) = reference_run(CASES[case], params, grads[:5], LRS[:5])
    for k in SHAPES:
        np.testing.assert_allclose(b_params[k], ref[k], rtol=RTOL, atol=ATOL, err_msg=f"{case}: {k}")


def test_resuming_without_the_step_count_is_detectably_different():
    """The step count matters (bias correction, SGD's first-step buffer): loading it is not optional."""
    for case in ("adam", "sgd-momentum"):
        params, grads = make_problem(seed=5)
        a = Optimizer(config(case), params)
        for g, lr in zip(grads[:3], LRS[:3]):
            a.update(params, copy(g), lr)
        p1, p2 = copy(params), copy(params)
        right, wrong = Optimizer(config(case), p1), Optimizer(config(case), p2)
        right.load_state_arrays(copy(a.state_arrays()), 3)
        wrong.load_state_arrays(copy(a.state_arrays()), 0)
        right.update(p1, copy(grads[3]), LRS[3])
        wrong.update(p2, copy(grads[3]), LRS[3])
        assert not np.allclose(p1["w"], p2["w"], rtol=1e-9), case


# ----------------------------------------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------------------------------------

def test_global_norm_is_root_sum_of_squares():
    _, grads = make_problem(seed=2, n_steps=1)
    g = grads[0]
    expected = math.sqrt(sum(float(x) ** 2 for k in SHAPES for x in g[k].ravel()))
    assert global_norm(g) == pytest.approx(expected, rel=1e-13)
    assert global_norm({"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}) == 5.0
    assert global_norm({"a": np.zeros((2, 2))}) == 0.0


def test_global_norm_of_float32_gradients_is_accumulated_in_float64():
    """global_norm's docstring promises float64 accumulation, and training runs in float32.

    Precision: a million float32 values squared and summed in float64 agree with the float64 sum to ~1e-12
    (float32 accumulation is off by ~1e-6). Range: each element of `big` is a finite float32, but the sum of
    squares (2.5e41) is not; accumulated in float32 it overflows to inf (train then stops as diverged, and
    clipping multiplies every gradient by 0). PyTorch's clip_grad_norm_ overflows the same way, so either
    this promise or the implementation has to change."""
    rng = np.random.default_rng(0)
    many = {"w": rng.normal(size=(1000, 1000)).astype(np.float32), "b": rng.normal(size=10).astype(np.float32)}
    exact = math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in many.values()))
    big = {"a": np.full((4, 5), 1e20, np.float32), "b": np.full(5, -1e20, np.float32)}
    big_exact = math.sqrt(25) * float(np.float32(1e20))
    got, big_got = global_norm(many), global_norm(big)
    assert (got, big_got) == (pytest.approx(exact, rel=1e-12), pytest.approx(big_exact, rel=1e-12)), \
        f"precision: {got!r} vs {exact!r}; range: {big_got!r} vs {big_exact!r}"


def test_clipping_scales_by_torchs_coefficient_when_above_max_norm():
    _, grads = make_problem(seed=4, n_steps=1)
    g = grads[0]
    original = copy(g)
    objects = {k: id(v) for k, v in g.items()}
    norm = math.sqrt(sum(float(np.sum(v ** 2)) for v in original.values()))
    max_norm = norm / 3
    returned = clip_by_global_norm(g, max_norm)
    assert returned == pytest.approx(norm, rel=1e-13)  # the norm before clipping
    coef = max_norm / (norm + 1e-6)
    for k in SHAPES:
        assert id(g[k]) == objects[k]  # in place
        np.testing.assert_allclose(g[k], original[k] * coef, rtol=1e-14, atol=0)
    assert global_norm(g) <= max_norm


def test_clipping_leaves_gradients_alone_below_max_norm():
    _, grads = make_problem(seed=4, n_steps=1)
    g = grads[0]
    original = copy(g)
    norm = global_norm(g)
    for max_norm in (norm * 2, norm + 2e-6, 1e9):
        assert clip_by_global_norm(g, max_norm) == norm
        for k in SHAPES:
            assert np.array_equal(g[k], original[k])


def test_clipping_at_exactly_max_norm_uses_the_epsilon():
    """PyTorch's rule: coefficient max_norm/(norm + 1e-6) < 1 even when norm == max_norm."""
    g = {"a": np.array([3.0, 4.0])}
    assert clip_by_global_norm(g, 5.0) == 5.0
    np.testing.assert_allclose(g["a"], np.array([3.0, 4.0]) * 5.0 / (5.0 + 1e-6), rtol=1e-15, atol=0)
    assert not np.array_equal(g["a"], [3.0, 4.0])


def test_max_norm_zero_turns_clipping_off():
    g = {"a": np.array([300.0, 400.0]), "b": np.array([[1e6]])}
    original = copy(g)
    assert clip_by_global_norm(g, 0.0) == pytest.approx(math.sqrt(300.0 ** 2 + 400.0 ** 2 + 1e12), rel=1e-15)
    for k in g:
        assert np.array_equal(g[k], original[k])


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
grad_dicts = st.dictionaries(
    st.sampled_from(["w", "b", "emb", "decoder.weight"]),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), elements=finite),
    min_size=1, max_size=4)


@settings(max_examples=40, deadline=None)
@given(grads=grad_dicts, max_norm=st.floats(1e-3, 1e3))
def test_clipping_properties(grads, max_norm):
    original = copy(grads)
    norm = clip_by_global_norm(grads, max_norm)
    assert norm == pytest.approx(math.sqrt(sum(float(np.sum(v ** 2)) for v in original.values())), rel=1e-12,
                                 abs=1e-300)
    # one common factor in [0, 1]: no gradient grows, none flips sign, directions are kept
    coef = min(1.0, max_norm / (norm + 1e-6))
    for k in grads:
        assert np.all(np.abs(grads[k]) <= np.abs(original[k]))
        assert np.all(grads[k] * original[k] >= 0)
        np.testing.assert_allclose(grads[k], original[k] * coef, rtol=1e-14, atol=0)
    assert global_norm(grads) <= max_norm * (1 + 1e-9)
    if norm + 1e-6 <= max_norm:
        assert all(np.array_equal(grads[k], original[k]) for k in grads)


@settings(max_examples=15, deadline=None)
@given(grads=grad_dicts)
def test_clipping_with_zero_max_norm_never_changes_anything(grads):
    original = copy(grads)
    clip_by_global_norm(grads, 0.0)
    assert all(np.array_equal(grads[k], original[k]) for k in grads)


# ----------------------------------------------------------------------------------------------------------
# Learning-rate schedules
# ----------------------------------------------------------------------------------------------------------

def test_constant_schedule():
    c = OptimConfig(lr=3e-3, schedule="constant", warmup=5, decay_every=1, decay_rate=0.1)
    for step, epoch in [(0, 0), (1, 0), (999, 7), (10**6, 10**3)]:
        assert learning_rate(c, step, epoch, total_steps=1000) == 3e-3


def test_step_schedule_decays_every_n_epochs():
    c = OptimConfig(lr=0.01, schedule="step", decay_every=10, decay_rate=0.5)
    for epoch in range(40):
        got = learning_rate(c, step=epoch * 7, epoch=epoch, total_steps=1000)
        assert got == pytest.approx(0.01 * 0.5 ** (epoch // 10), rel=1e-15), epoch
    # written out
    assert learning_rate(c, 0, 9, 1000) == pytest.approx(0.01)
    assert learning_rate(c, 0, 10, 1000) == pytest.approx(0.005)
    assert learning_rate(c, 0, 25, 1000) == pytest.approx(0.0025)
    assert learning_rate(c, 0, 30, 1000) == pytest.approx(0.00125)
    # it depends on the epoch, not the step
    assert learning_rate(c, 5000, 0, 1000) == 0.01
    every_epoch = OptimConfig(lr=1.0, schedule="step", decay_every=1, decay_rate=0.97)
    assert learning_rate(every_epoch, 0, 3, 10) == pytest.approx(0.97 ** 3, rel=1e-15)


def test_step_schedule_by_steps_decays_at_multiples_of_decay_steps_whatever_the_epoch():
    c = OptimConfig(lr=6e-3, schedule="step", decay_steps=3600, decay_every=1, decay_rate=0.25)
    assert learning_rate(c, 0, 5, 5000) == 6e-3
    assert learning_rate(c, 3599, 1, 5000) == 6e-3
    assert learning_rate(c, 3600, 1, 5000) == pytest.approx(1.5e-3, rel=1e-15)
    assert learning_rate(c, 7200, 0, 5000) == pytest.approx(6e-3 / 16, rel=1e-15)


def test_cosine_schedule_with_warmup():
    lr, min_lr, warmup, total = 1e-2, 1e-4, 4, 20
    c = OptimConfig(lr=lr, min_lr=min_lr, schedule="cosine", warmup=warmup)

    def expected(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / (total - warmup))
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))

    got = [learning_rate(c, step, epoch=step // 3, total_steps=total) for step in range(total + 5)]
    for step, value in enumerate(got):
        assert value == pytest.approx(expected(step), rel=1e-13, abs=1e-18), step
    # written out: linear warmup to lr, the peak, the midpoint, min_lr at total_steps and after
    assert got[:warmup] == pytest.approx([0.0025, 0.005, 0.0075, 0.01], rel=1e-15)
    assert got[warmup] == pytest.approx(lr, rel=1e-15)
    assert got[warmup + (total - warmup) // 2] == pytest.approx((lr + min_lr) / 2, rel=1e-13)
    assert got[total] == pytest.approx(min_lr, rel=1e-13)
    assert all(v == pytest.approx(min_lr, rel=1e-13) for v in got[total:])
    after = got[warmup:]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert min(got) >= min_lr * (1 - 1e-12)


def test_cosine_schedule_without_warmup_starts_at_lr():
    c = OptimConfig(lr=0.5, min_lr=0.0, schedule="cosine", warmup=0)
    assert learning_rate(c, 0, 0, 100) == 0.5
    assert learning_rate(c, 50, 0, 100) == pytest.approx(0.25, rel=1e-13)
    assert learning_rate(c, 25, 0, 100) == pytest.approx(0.25 * (1 + math.cos(math.pi / 4)), rel=1e-13)
    assert learning_rate(c, 100, 0, 100) == pytest.approx(0.0, abs=1e-16)


@pytest.mark.parametrize("ema", [0.9, 0.22])
def test_weight_average_follows_its_definition(ema):
    # θ̄ starts at θ₀ and after step t becomes βₜθ̄ + (1-βₜ)θ with βₜ = min(β, (1+t)/(10+t)), computed here the
    # long way in float64. With β = 0.9 every step is in the warm-up; 0.22 caps it from step 2 (3/12 > 0.22).
    rng = np.random.default_rng(3)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    expected = {k: p.copy() for k, p in params.items()}
    opt = Optimizer(OptimConfig(name="adam", ema=ema), params)
    for t, lr in enumerate(LRS, start=1):
        opt.update(params, {k: rng.normal(size=s) for k, s in SHAPES.items()}, lr)
        beta = {0.9: [2 / 11, 3 / 12, 4 / 13, 5 / 14, 6 / 15, 7 / 16], 0.22: [2 / 11, .22, .22, .22, .22, .22]}[ema][t - 1]
        expected = {k: beta * expected[k] + (1 - beta) * params[k] for k in params}
    for k in params:
        np.testing.assert_allclose(opt.average[k], expected[k], rtol=RTOL, atol=ATOL)
        assert not np.allclose(opt.average[k], params[k])  # the average lags the weights


def test_weight_average_does_not_change_the_steps():
    rng = np.random.default_rng(4)
    start = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in LRS]
    runs = []
    for ema in (0.0, 0.99):
        params = {k: p.copy() for k, p in start.items()}
        opt = Optimizer(OptimConfig(name="adam", weight_decay=0.1, ema=ema), params)
        for g, lr in zip(grads, LRS):
            opt.update(params, {k: a.copy() for k, a in g.items()}, lr)
        runs.append((params, opt.average))
    assert runs[0][1] is None
    for k in start:
        np.testing.assert_array_equal(runs[0][0][k], runs[1][0][k])
