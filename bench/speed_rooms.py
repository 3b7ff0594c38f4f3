"""The rooms runs against PyTorch on the same batches: the default run (`charlstm train` with no arguments:
the rooms-names-quick preset on data/rooms-names-train.txt, an LSTM with a pointer) or, with --preset
rooms, the closed recipe (configs/rooms.yaml on data/rooms-train.txt, the default run until 2026-12-05).
Both read one story a line, a batch's stories ordered longest first, padding skipped.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/speed_rooms.py --rounds 3   # all sides, in turn
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/speed_rooms.py --rounds 3 --preset rooms
    python bench/speed_rooms.py --side ours        # one side's round, one JSON line (as --rounds runs it)

Every side takes the same 20 windows of the preset's batches, at steps spread evenly over its run (the
curriculum draws short stories first, all of them later), and times one pass over them after two
untimed steps; the figure is the stories' characters trained per second (padding not counted; a
character the loss weighs more counts once).
  ours   the Trainer `charlstm train` builds (launch.prepare, its engine and worker processes), each
         window through train.train_step: forward, backward, clipping, Adam, the moving average;
  torch  nn.LSTM on pack_padded_sequence of the one-hot inputs, nn.Linear on its outputs, the pointer
         (charlstm/pointer.py: three nn.Linear and a softmax over each line's earlier positions and the
         sentinel, on the outputs unpacked to (B, T, H)) when the preset has one, the weighted negative
         log-likelihood over the stories' characters, clip_grad_norm_, Adam, and the same moving average
         (torch._foreach_lerp_), each story from the zero state; charlstm's initial weights;
  padded the same in PyTorch without packing: the whole padded batch through nn.LSTM, padding weighted 0
         in the loss (what a PyTorch script often does, and faster here than packing).
Before timing, the peer checks that its loss on the first window equals charlstm's for the same weights
(to 1e-5), so both sides train the same model. --rounds N alternates fresh processes (charlstm, packed,
padded) and prints the medians and the ratio to each PyTorch side. PyTorch reads one-hot inputs (a dense
product), charlstm gathers columns.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from timing import child_parser, import_torch, log, run_child  # bench/timing.py, beside this script

WINDOWS = 20  # the windows timed, spread over the preset's run
CLOSED = [str(pathlib.Path(__file__).resolve().parents[1] / "data" / "rooms-train.txt")]
PRESETS = {"default": ([], None), "rooms": (CLOSED, "rooms")}  # corpus and preset; none: the demo's


def windows_of(trainer):
    """The preset's windows at WINDOWS steps spread over its run, as the Trainer's loop would draw them."""
    from charlstm import train

    cfg = trainer.cfg
    inputs = trainer.inputs or train.read_inputs(cfg, trainer.sources, None, lambda text: None)
    batches = inputs.batches
    steps = range(0, cfg.train.steps, max(1, cfg.train.steps // WINDOWS))[:WINDOWS]
    return [batches.window(*divmod(step, batches.windows_per_epoch), step) for step in steps], inputs


def one_pass(step, windows):
    """Seconds for one call of step(window) per window, after two untimed calls; and the characters."""
    for w in windows[:2]:
        step(w)
    t0 = time.perf_counter()
    for w in windows:
        step(w)
    return time.perf_counter() - t0, sum(w.targets() for w in windows)


def ours(a):
    """charlstm's side: its Trainer's engine stepping through the windows."""
    import numpy as np

    from charlstm import launch, model
    from charlstm.optim import learning_rate
    from charlstm.train import train_step

    never = 10**9
    with tempfile.TemporaryDirectory(prefix="charlstm-rooms-") as d:
        overrides = [f"train.eval_every={never}", f"train.save_every={never}", f"train.workers={a.workers}"]
        corpus, preset = PRESETS[a.preset]
        trainer = launch.prepare(corpus, preset, out=os.path.join(d, "run"), overrides=overrides, quiet=True)
        trainer._setup()  # the corpus, the state and the engine, as run() builds them
        try:
            windows, _ = windows_of(trainer)
            cfg, ts = trainer.cfg, trainer.ts
            zero = model.zero_state(trainer.spec, cfg.data.batch)

            def step(w):
                ts.state = zero  # lines mode: every story from the zero state
                loss, norm = train_step(trainer.engine, ts, w, learning_rate(cfg.optim, cfg.train.steps // 2, 0,
                                                                             cfg.train.steps), cfg.optim.clip)
                if not (np.isfinite(loss) and np.isfinite(norm)):  # a skipped update is not a step
                    raise RuntimeError(f"the training step gave loss {loss}, gradient norm {norm}")

            seconds, chars = one_pass(step, windows)
            workers = getattr(trainer.engine, "workers", 1)
        finally:
            trainer._close_engine()
    return {"seconds_per_pass": seconds, "chars_per_pass": chars, "chars_per_s": chars / seconds,
            "workers": workers}


def peer(a, torch, packed=True):
    """PyTorch's side on the same windows: packed sequences, or the padded batch with padding weighted 0."""
    import numpy as np

    from charlstm import launch, model
    from charlstm.trainstate import TrainState

    with tempfile.TemporaryDirectory(prefix="charlstm-rooms-") as d:
        corpus, preset = PRESETS[a.preset]
        trainer = launch.prepare(corpus, preset, out=os.path.join(d, "run"), quiet=True)
        windows, inputs = windows_of(trainer)
    cfg, V = trainer.cfg, len(inputs.corpus.vocab)
    H, nn, F = cfg.model.hidden, torch.nn, torch.nn.functional
    spec = model.Spec.of(cfg.model, V, cfg.data.window)
    params = TrainState.new(cfg, spec, inputs.corpus.vocab).params  # the Trainer's own initial weights
    width = cfg.model.pointer
    lstm, decoder = nn.LSTM(V, H, cfg.model.layers), nn.Linear(H, V)
    modules = {"lstm": lstm, "decoder": decoder}
    if width:
        modules.update({f"pointer.{name}": nn.Linear(H, out) for name, out in (("query", width), ("key", width),
                                                                                 ("gate", 1))})
    with torch.no_grad():  # charlstm's initial weights, by their shared names
        for prefix, module in modules.items():
            for name, p in module.named_parameters():
                p.copy_(torch.from_numpy(params[f"{prefix}.{name}"].astype(np.float32)))
    ps = [p for module in modules.values() for p in module.parameters()]
    average = [p.detach().clone() for p in ps]
    o = cfg.optim
    opt = torch.optim.Adam(ps, lr=o.lr, betas=o.betas, eps=o.eps)
    batches = []
    for w in windows:  # the same stories: lengths from the mask, padding dropped by packing
        lengths = torch.from_numpy((w.mask > 0).sum(axis=0))
        batches.append((F.one_hot(torch.from_numpy(w.x), V).float(), torch.from_numpy(w.y),
                        torch.from_numpy(w.mask).float(), lengths))
    pack = nn.utils.rnn.pack_padded_sequence

    def pointed(top, y):
        """-log p (B, T) of the targets y (B, T) under the pointer's mixture; top (B, T, H)."""
        T = top.shape[1]
        q = modules["pointer.query"](top) / width ** 0.5
        k = modules["pointer.key"](top)
        before = torch.ones(T, T, dtype=torch.bool).tril(-1)  # j < t
        scores = (q @ k.transpose(1, 2)).masked_fill(~before, float("-inf"))  # (B, T, T)
        a = torch.softmax(torch.cat([scores, modules["pointer.gate"](top)], dim=2), dim=2)  # sentinel last
        same = (y[:, None, :] == y[:, :, None]) & before  # [b, t, j]: y_j == y_t
        pv = torch.softmax(decoder(top), dim=2).gather(2, y[:, :, None])[:, :, 0]
        return -torch.log((a[:, :, T] * pv + (a[:, :, :T] * same).sum(dim=2)).clamp_min(1e-30))

    def loss_of(i):
        x, y, mask, lengths = batches[i]
        if width:  # the pointer reads every earlier position of the line: the outputs as (B, T, H)
            if packed:
                out = lstm(pack(x, lengths, enforce_sorted=False))[0]
                top = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])[0].transpose(0, 1)
            else:
                top = lstm(x)[0].transpose(0, 1)
            return (pointed(top, y.T) * mask.T).sum() / mask.sum()
        if packed:
            out = lstm(pack(x, lengths, enforce_sorted=False))[0].data
            targets = pack(y, lengths, enforce_sorted=False).data
            weights = pack(mask, lengths, enforce_sorted=False).data
        else:
            out, targets, weights = lstm(x)[0].reshape(-1, H), y.reshape(-1), mask.reshape(-1)
        return (F.cross_entropy(decoder(out), targets, reduction="none") * weights).sum() / weights.sum()

    ours_loss = model.forward(params, windows[0], model.zero_state(spec, windows[0].x.shape[1]))[0]
    theirs = loss_of(0).item()
    if abs(theirs - ours_loss) > 1e-5 * max(1.0, abs(ours_loss)):
        raise RuntimeError(f"PyTorch's model is not charlstm's: loss {theirs:.6f} against {ours_loss:.6f}")

    def step(i):
        loss = loss_of(i)
        if not torch.isfinite(loss):
            raise RuntimeError(f"PyTorch's loss became {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(ps, o.clip)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(average, [p.detach() for p in ps], 1 - o.ema)

    class Indexed:  # one_pass counts characters from the windows and steps by index
        def __init__(self, i, w):
            self.i, self.w = i, w

        def targets(self):
            return self.w.targets()

    seconds, chars = one_pass(lambda item: step(item.i), [Indexed(i, w) for i, w in enumerate(windows)])
    return {"seconds_per_pass": seconds, "chars_per_pass": chars, "chars_per_s": chars / seconds,
            "torch": torch.__version__, "packed": packed}


def measure(a, torch, H, L, B, T):
    """run_child's measurement (the shape options do not apply: the preset fixes it)."""
    if a.side == "ours":
        return ours(a)
    return peer(a, torch or import_torch(a.threads), packed=a.side == "torch")


def alternate(a):
    """--rounds: each side in its own fresh process, in turn; medians and their ratio."""
    figures = {"ours": [], "torch": [], "padded": []}
    for r in range(a.rounds):
        for side in figures:
            cmd = [sys.executable, __file__, "--side", side, "--threads", str(a.threads),
                   "--workers", str(a.workers), "--preset", a.preset]
            env = {**os.environ, **{k: str(a.threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                 "MKL_NUM_THREADS")}}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                last = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
                sys.exit(f"the {side} side failed: {last[0]}")
            report = json.loads(proc.stdout.splitlines()[-1])
            figures[side].append(report["chars_per_s"])
            log(f"rooms train round {r + 1}/{a.rounds}: {side} {report['chars_per_s']:,.0f} chars/s")
    med = {side: statistics.median(v) for side, v in figures.items()}
    print(json.dumps({"part": "rooms-train", "preset": a.preset, "cpu": report["cpu"], "rounds": figures, "median": med,
                      "ratio_to_packed": med["ours"] / med["torch"],
                      "ratio_to_faster": med["ours"] / max(med["torch"], med["padded"]),
                      "command": " ".join(sys.argv)}))


if __name__ == "__main__":
    ap = child_parser(__doc__, ["ours", "torch", "padded"])
    ap.add_argument("--rounds", type=int, help="alternate this many rounds of fresh processes, all sides")
    ap.add_argument("--preset", choices=list(PRESETS), default="default",
                    help="default: the run of `charlstm train` with no arguments; rooms: the closed recipe")
    args = ap.parse_args()
    if args.rounds:
        alternate(args)
    else:
        sys.exit(run_child(args, "rooms-train", measure))
