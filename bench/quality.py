"""Time to quality: charlstm and PyTorch's nn.LSTM, the same configuration, the same wall-clock budget.

    python bench/quality.py ../shared/corpora/tinyshakespeare.txt --config configs/shakespeare.yaml --minutes 10
    python bench/quality.py train.txt --val val.txt --minutes 10     # no --config: model.size auto

Without --config, charlstm's run sizes itself for the budget (model.size auto) and PyTorch trains the
configuration it chose, read from the run's config.yaml.

Both train on the same windows of the same corpus (charlstm's own batching, random offsets and all),
from the same initial weights, with the same optimizer, learning-rate schedule and clipping, and both
are validated with the same definition on the same held-out text (charlstm's validation streams, from the
zero state, state carried). The clock runs over training and validation alike. charlstm runs as
`charlstm train` in a subprocess, exactly as a user runs it; PyTorch in this process, one after the other
(never at the same time: 2 cores). Writes bench/results/quality-<name>.json and prints a Markdown table;
--png draws both curves (needs matplotlib).
"""

import json
import math
import pathlib
import sys
import tempfile
import time

import numpy as np
import yaml

import runner  # bench/runner.py, beside this script


def parse():
    ap = runner.parser(__doc__)
    ap.add_argument("corpus", help="the training text")
    ap.add_argument("--config", help="a preset or YAML file; without it the run sizes itself (model.size auto)")
    ap.add_argument("--val", help="validation file (default: the corpus's held-out tail)")
    ap.add_argument("--minutes", type=float, default=10.0, help="each side's budget [default: %(default)s]")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for both sides (repeatable)")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch's threads [default: %(default)s]")
    ap.add_argument("--skip", default="", help="charlstm or torch: leave one side out")
    ap.add_argument("--reuse", metavar="JSON", help="take the skipped side's curve from this earlier result file")
    ap.add_argument("--name", default=None, help="results go to bench/results/quality-NAME.json [default: the "
                                                 "config's name, or auto-<minutes>m]")
    ap.add_argument("--results", type=pathlib.Path, help="the results file [default: bench/results/quality-NAME.json]")
    ap.add_argument("--png", help="write the curves to this PNG (matplotlib)")
    ap.add_argument("--keep", metavar="DIR", help="charlstm's run directory, kept (default: a temporary one)")
    return ap.parse_args()


def run_charlstm(args, out_dir):
    """charlstm's side: `charlstm train` for the budget; its validation curve [(seconds, loss, step)], speed
    and the config it ran (which, without --config, model.size auto chose)."""
    extra = [*(["--config", args.config] if args.config else []), *(["--val", args.val] if args.val else [])]
    proc = runner.train(args.corpus, out_dir, "--time-budget", f"{args.minutes:g}m", *extra, sets=args.overrides)
    if proc.returncode:
        sys.exit(f"quality.py: charlstm train failed: {runner.failure(proc)}")
    records = runner.metrics(out_dir)
    curve = [(r["elapsed"], r["val_loss"], r["step"]) for r in records if "val_loss" in r]
    return {"curve": curve, "chars_per_s": runner.speed(records), "config": (out_dir / "config.yaml").read_text()}


def run_torch(args, chosen=None):
    """PyTorch's side: the configuration of --config, or `chosen` (the YAML of charlstm's run) when given."""
    import torch

    from charlstm import config as config_mod
    from charlstm import model
    from charlstm.data import load_corpus, make_batches, split_streams
    from charlstm.optim import learning_rate

    torch.set_num_threads(args.threads)
    if chosen is not None:
        cfg = config_mod.update(config_mod.Config(), yaml.safe_load(chosen), source="charlstm's run")
    else:
        cfg = config_mod.load(args.config, args.overrides)
    corpus = load_corpus([args.corpus], cfg.data, args.val)
    batches = make_batches(corpus.train, corpus.vocab, cfg.data, cfg.train.seed)
    V, H, L = len(corpus.vocab), cfg.model.hidden, cfg.model.layers
    spec = model.Spec("lstm", V, H, L)
    init = model.init_params(spec, np.random.default_rng([cfg.train.seed, 0]), np.float32, cfg.model.forget_bias)
    lstm = torch.nn.LSTM(V, H, L, dropout=cfg.model.dropout)
    decoder = torch.nn.Linear(H, V)
    net = torch.nn.ModuleDict({"lstm": lstm, "decoder": decoder})
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init.items()})
    out_drop = torch.nn.Dropout(cfg.model.decoder_dropout)
    o = cfg.optim
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    limit = cfg.train.val_max_chars
    val = split_streams(corpus.val[:limit] if limit else corpus.val, cfg.data.val_streams)

    longest = max(len(s) for s in val)
    padded = np.zeros((longest, len(val)), np.int64)  # (T, B): the streams side by side, batched as charlstm's
    scored = np.zeros((longest, len(val)), bool)  # which positions are real characters
    for j, s in enumerate(val):
        padded[: len(s), j], scored[: len(s), j] = s, True

    def validate():
        """Each stream from the zero state, the state carried across windows, all streams at once."""
        net.eval()
        ids, mask = torch.from_numpy(padded), torch.from_numpy(scored)
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for a in range(0, longest - 1, cfg.data.window):
                b = min(a + cfg.data.window, longest - 1)
                out, state = lstm(torch.nn.functional.one_hot(ids[a:b], V).float(), state)
                logp = torch.log_softmax(decoder(out), dim=-1)
                nll = -logp.gather(2, ids[a + 1 : b + 1, :, None])[..., 0]
                real = mask[a + 1 : b + 1]
                total += nll[real].sum().item()
                count += int(real.sum())
        net.train()
        return total / count

    curve, start, step, epoch, n, state = [], time.monotonic(), 0, 0, 0, None
    chars, train_time = 0, 0.0
    budget = args.minutes * 60
    while time.monotonic() - start < budget and step < cfg.train.steps:
        if n >= batches.windows_per_epoch:
            epoch, n = epoch + 1, 0
        if batches.starts_sequence(n):
            state = None
        x, y, mask = batches.window(epoch, n, step)
        t0 = time.monotonic()
        for g in opt.param_groups:
            g["lr"] = learning_rate(o, step, epoch, cfg.train.steps)
        out, (h, c) = lstm(torch.nn.functional.one_hot(torch.from_numpy(x.astype(np.int64)), V).float(), state)
        logits = decoder(out_drop(out)).reshape(-1, V)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y.astype(np.int64)).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if o.clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), o.clip)
        opt.step()
        state = (h.detach(), c.detach())
        train_time += time.monotonic() - t0
        chars += x.size
        step, n = step + 1, n + 1
        if step % cfg.train.eval_every == 0:
            curve.append((time.monotonic() - start, validate(), step))
    curve.append((time.monotonic() - start, validate(), step))
    return {"curve": curve, "chars_per_s": chars / train_time}


def at(curve, seconds):
    """The last validation loss recorded at or before `seconds`."""
    seen = [v for t, v, _ in curve if t <= seconds + 1e-9]
    return min(seen) if seen else math.nan


def main():
    args = parse()
    name = args.name or (pathlib.Path(args.config).stem if args.config else f"auto-{args.minutes:g}m")
    results = {"corpus": args.corpus, "val": args.val, "config": args.config, "overrides": args.overrides,
               "minutes": args.minutes, "blas": runner.blas(), "cpu": runner.cpu()}
    skip = set(args.skip.split(","))
    if args.reuse:
        earlier = json.loads(pathlib.Path(args.reuse).read_text())
        keys = {"charlstm": ["charlstm"], "torch": ["torch", "torch_version"]}
        taken = sorted(skip & keys.keys())
        if not taken:
            sys.exit("quality.py: --reuse takes the side named by --skip; give --skip charlstm or --skip torch")
        for key in ("corpus", "val", "config", "overrides", "minutes"):
            if earlier.get(key) != results[key]:
                sys.exit(f"quality.py: {args.reuse} was run with {key} {earlier.get(key)!r}, not {results[key]!r}")
        for side in taken:
            if side not in earlier:
                sys.exit(f"quality.py: {args.reuse} has no {side} curve")
            for key in keys[side]:
                if key in earlier:
                    results[key] = earlier[key]
        results["reused"] = {"file": args.reuse, "sides": taken}
    if "charlstm" not in skip:
        print("charlstm ...", file=sys.stderr, flush=True)
        if args.keep:
            results["charlstm"] = run_charlstm(args, pathlib.Path(args.keep))
        else:
            with tempfile.TemporaryDirectory() as d:
                results["charlstm"] = run_charlstm(args, pathlib.Path(d) / "run")
    if "torch" not in skip:
        print("pytorch ...", file=sys.stderr, flush=True)
        chosen = None if args.config else results.get("charlstm", {}).get("config")
        if not args.config and chosen is None:
            sys.exit("quality.py: without --config, PyTorch trains what charlstm's run chose: run that side too, "
                     "or --reuse its result")
        results["torch"] = run_torch(args, chosen)
        import torch

        results["torch_version"] = torch.__version__
    runner.save(args.results or runner.RESULTS / f"quality-{name}.json", results)
    sides = [s for s in ("charlstm", "torch") if s in results]
    marks = [m for m in (1, 2, 4, 6, 8, 10, 15, 20, 30) if m <= args.minutes] or [args.minutes]
    rows = [[f"{m:g}", *(f"{at(results[s]['curve'], m * 60):.4f}" for s in sides)] for m in marks]
    rows.append(["final", *(f"{results[s]['curve'][-1][1]:.4f} (step {results[s]['curve'][-1][2]})" for s in sides)])
    rows.append(["training chars/s", *(f"{results[s]['chars_per_s']:,.0f}" for s in sides)])
    print(runner.markdown(["minutes", *(f"{s} val (nats/char)" for s in sides)], rows))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for s in sides:
            t, v, _ = zip(*results[s]["curve"])
            ax.plot(np.array(t) / 60, v, marker=".", label="charlstm" if s == "charlstm" else "PyTorch nn.LSTM")
        ax.set_xlabel("minutes of training (2 cores)")
        ax.set_ylabel("validation loss (nats/char)")
        ax.set_title(f"{pathlib.Path(args.corpus).name}, {name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)
        print(f"wrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
