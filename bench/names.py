"""Can the LSTM learn to copy names it never saw? Levers on the open rooms world, compared by steps.

    python bench/names.py --steps 6000 --every 500 base open-gates curriculum-mix batch128 hidden384 \
        warm --warm closed.npz    # closed.npz: git show b963e75:data/rooms.npz > closed.npz
    python bench/names.py --table            # the table again from bench/results/names.json

Every run trains configs/rooms.yaml (the shipped recipe) on open stories with names from the seen pool
(`charlstm corpus rooms --open --closed-share 0.2 --stories 40000`), plus the variant's settings, in
chunks of --every steps (`--resume --steps N`, which continues bit for bit). After each chunk it reads
300 stories with names from the unseen pool (`--names unseen --split test`) up to each answer,
teacher-forced: the answer's first letter (which of the story's names is greeted) and its other letters
(spelling a name it never saw), as negative log-likelihood and accuracy of the most likely character,
and fills the blanks of 200 of them greedily (exact match). A first letter leaves chance when its
accuracy passes 1 in 5 (a model that remembers no name guesses an initial at about 1 in 26). With
--parallel 2 two runs share the machine, each one process with one BLAS thread: compare them by steps,
not minutes; with --parallel 1 a run has the machine, as `charlstm train` runs (its minutes are the
training's own, metrics.jsonl's elapsed: the scoring between chunks is not counted).
"""

import json
import pathlib
import sys
import tempfile

import numpy as np

import runner  # bench/runner.py, beside this script
from charlstm import checkpoint, corpus, evaluate, model
from charlstm.data import Window

RESULTS = runner.RESULTS / "names.json"
VARIANTS = {
    "base": [],
    "open-gates": ["model.open_gates=1.0"],
    "curriculum-mix": ["data.curriculum_mix=0.25"],
    "batch128": ["data.batch=128", "optim.lr=0.01"],
    "hidden384": ["model.hidden=384"],
    "warm": ["model.init_from={warm}"],  # the closed world's LSTM, data/rooms.npz as shipped until 2026-12-04
    "gru": ["model.cell=gru", "model.hidden=298"],
}
LEAVES_CHANCE = 0.2


def stories(n, **kw):
    return corpus.open_rooms(n, **kw)


def read_answers(ckpt, tests):
    """Teacher-forced figures on the answers of the test stories (see the module docstring)."""
    texts = ["\n" + s.text for s in tests]
    T, B = max(map(len, texts)), len(texts)
    x, y = np.zeros((T, B), np.int64), np.zeros((T, B), np.int64)
    first, rest = np.zeros((T, B), bool), np.zeros((T, B), bool)
    for b, (text, s) in enumerate(zip(texts, tests)):
        ids = ckpt.vocab.encode(text)
        x[: len(ids) - 1, b], y[: len(ids) - 1, b] = ids[:-1], ids[1:]
        start = text.rfind("said hi to ") + len("said hi to ")  # the answer's first letter, as a target index
        first[start - 1, b] = True
        rest[start : start + len(s.answer) - 1, b] = True
    _, _, cache = model.forward(ckpt.params, Window(x, y, None), model.zero_state(ckpt.spec, B))
    probs = cache.probs.reshape(T, B, -1)
    p_target = np.take_along_axis(probs, y[..., None], 2)[..., 0]
    right = probs.argmax(2) == y
    out = {}
    for name, where in (("first", first), ("rest", rest)):
        out[f"{name}_nll"] = round(float(-np.log(p_target[where]).mean()), 4)
        out[f"{name}_acc"] = round(float(right[where].mean()), 4)
    return out


def run(name, overrides, seed, steps, every, train_text, warm, alone=False):
    """One variant and seed, trained in chunks of `every` steps and scored after each (module docstring)."""
    tests = stories(300, names="unseen", split="test")
    prompts = [s.prompt for s in tests[:200]]
    answers = [s.answer for s in tests[:200]]
    curve = []
    with tempfile.TemporaryDirectory() as d:
        out = pathlib.Path(d) / "run"
        for done in range(every, steps + 1, every):
            if done == every:
                sets = ["train.cloze_every=0", *(s.format(warm=warm) for s in overrides)]
                proc = runner.train(train_text, out, "--config", runner.CONFIGS / "rooms.yaml", "--seed", seed,
                                    "--steps", done, sets=sets, shared=not alone)
            else:
                proc = runner.train(None, out, "--resume", out, "--steps", done, shared=not alone)
            if proc.returncode:
                return {"variant": name, "seed": seed, "error": runner.failure(proc), "curve": curve}
            ckpt = checkpoint.load(out / "latest.npz")
            point = {"step": ckpt.step, **read_answers(ckpt, tests)}
            point["exact"], _, _ = evaluate.cloze(ckpt.params, ckpt.vocab, prompts, answers, spec=ckpt.spec)
            point["elapsed"] = runner.metrics(out)[-1].get("elapsed")
            curve.append(point)
            print(json.dumps({"variant": name, "seed": seed, **point}), file=sys.stderr, flush=True)
    return {"variant": name, "overrides": overrides, "seed": seed, "steps": steps, "curve": curve, "error": None}


def leaves_chance(curve):
    return next((p["step"] for p in curve if p["first_acc"] >= LEAVES_CHANCE), None)


def table(results):
    rows = []
    for r in results:
        if not r["curve"]:
            continue
        end, left = r["curve"][-1], leaves_chance(r["curve"])
        rows.append([r["variant"], r["seed"], left if left else "never", f"{end['first_acc']:.0%}",
                     f"{end['rest_nll']:.2f} nats, {end['rest_acc']:.0%}", f"{end['exact']:.1%}", f"{end['step']:,}"])
    return runner.markdown(["variant", "seed", "first letter leaves chance at", "first letter at the end",
                            "other letters: NLL, accuracy at the end", "exact at the end", "steps"], rows)


def main():
    ap = runner.variant_study(__doc__, RESULTS, VARIANTS, steps=6000, every=500, seeds="1")
    ap.add_argument("--warm", help="the checkpoint the warm variant starts from: the closed world's LSTM, "
                                    "git show b963e75:data/rooms.npz > closed.npz")
    args = ap.parse_args()
    if args.table:
        print(table(runner.load(args.results)))
        return
    runner.check_variants(ap, args.variants, VARIANTS)
    if "warm" in args.variants and not args.warm:
        ap.error("the warm variant needs --warm CHECKPOINT")
    work = pathlib.Path(tempfile.mkdtemp(prefix="charlstm-names-"))
    train_text = work / "open.txt"
    train_text.write_text("".join(s.text + "\n" for s in stories(40000, closed_share=0.2)))
    jobs = [(v, VARIANTS[v], seed) for v in args.variants for seed in runner.seeds(args.seeds)]
    results = runner.run_all(jobs, lambda job: run(*job, args.steps, args.every, train_text, args.warm,
                                                   alone=args.parallel == 1),
                             args.parallel, args.results, key=lambda r: (r["variant"], r["seed"]))
    print(table(results))


if __name__ == "__main__":
    main()
