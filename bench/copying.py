"""Copying names never seen: the rooms-names recipe with one lever taken away at a time, or another cell.

    python bench/copying.py --steps 3000 --every 250 recipe no-pointer no-weight no-chrono seen-names gru
    python bench/copying.py --table           # the table again from bench/results/copying.json

Every run trains configs/rooms-names.yaml on its corpus (an LSTM with a pointer, the names' letters
weighted x5, chrono initialisation, 200,000 stories with fresh names, written as the preset says:
docs/memory.md) with the variant's change, in chunks of --every steps (`--resume --steps N`, which continues bit for bit). After each
chunk it scores 300 stories of data/rooms-cloze-realnames.tsv and 300 of data/rooms-cloze-newnames.tsv
(names and fillers no training story holds): greedy exact match, the first letter of the fill (which
name was chosen), and the answer's loss, nats per character of the name and its full stop read
teacher-forced. With --parallel 2 two runs share the machine, each one process with one BLAS thread:
compare them by steps; the minutes recorded are metrics.jsonl's elapsed, the training's own.
"""

import pathlib
import sys
import tempfile

import numpy as np

import runner  # bench/runner.py, beside this script
from charlstm import checkpoint, corpus, evaluate, model
from charlstm.data import Window

RESULTS = runner.RESULTS / "copying.json"
NO_CLOZE = ["train.cloze_every=0"]
VARIANTS = {
    "recipe": [],
    "no-pointer": ["model.pointer=0"],
    "no-weight": ["data.loss_pattern=null", "data.loss_weight=1"],
    "no-chrono": ["model.chrono=0"],
    "seen-names": [],  # the corpus of the seen pool, 9,121 names that come back (see main)
    "gru": ["model.cell=gru", "model.hidden=298"],  # about the LSTM's parameter count
    # LSTM levers beside the recipe, looking for what lets the GRU choose early (docs/memory.md)
    "lr-1e-2": ["optim.lr=0.01"],
    "forget-1": ["model.chrono=0", "model.forget_bias=1"],
    "orthogonal": ["model.orthogonal=true"],
    "hidden-384": ["model.hidden=384"],
}
SETS = ("rooms-cloze-realnames.tsv", "rooms-cloze-newnames.tsv")


def answer_loss(ckpt, prompts, answers):
    """Nats per character of each answer and its full stop, read teacher-forced after its prompt."""
    texts = ["\n" + p.replace("___.", a + ".") for p, a in zip(prompts, answers)]
    T, B = max(map(len, texts)) - 1, len(texts)
    x, y, mask = np.zeros((T, B), np.intp), np.zeros((T, B), np.intp), np.zeros((T, B))
    for b, (text, a) in enumerate(zip(texts, answers)):
        ids = ckpt.vocab.encode(text)
        x[: len(ids) - 1, b], y[: len(ids) - 1, b] = ids[:-1], ids[1:]
        mask[len(ids) - 2 - len(a) : len(ids) - 1, b] = 1.0  # the targets of the answer's letters and "."
    loss, _, _ = model.forward(ckpt.params, Window(x, y, mask), model.zero_state(ckpt.spec, B, np.float64),
                               packed=model.pack({k: v.astype(np.float64) for k, v in ckpt.params.items()}, ckpt.spec))
    return loss


def score(ckpt):
    point = {}
    for name in SETS:
        prompts, answers = evaluate.read_cloze(runner.ROOT / "data" / name)
        prompts, answers = prompts[:300], answers[:300]
        exact, _, fills = evaluate.cloze(ckpt.params, ckpt.vocab, prompts, answers, spec=ckpt.spec)
        key = name.removeprefix("rooms-cloze-").removesuffix(".tsv")
        point[f"{key}_exact"] = round(exact, 4)
        point[f"{key}_first"] = round(sum(f[:1] == a[:1] for f, a in zip(fills, answers)) / len(answers), 4)
        point[f"{key}_answer_nll"] = round(float(answer_loss(ckpt, prompts, answers)), 4)
    return point


def run(name, overrides, seed, steps, every, corpora, alone=False):
    """One variant and seed, trained in chunks of `every` steps and scored after each (module docstring)."""
    curve = []
    text = corpora["seen" if name == "seen-names" else "fresh"]
    with tempfile.TemporaryDirectory() as d:
        out = pathlib.Path(d) / "run"
        for done in range(every, steps + 1, every):
            if done == every:
                proc = runner.train(text, out, "--config", runner.CONFIGS / "rooms-names.yaml", "--seed", seed,
                                    "--steps", done, sets=[*NO_CLOZE, *overrides], shared=not alone)
            else:
                proc = runner.train(None, out, "--resume", out, "--steps", done, shared=not alone)
            if proc.returncode:
                return {"variant": name, "seed": seed, "error": runner.failure(proc), "curve": curve}
            ckpt = checkpoint.load(out / "latest.npz")
            point = {"step": ckpt.step, "elapsed": runner.metrics(out)[-1].get("elapsed"), **score(ckpt)}
            curve.append(point)
            print({"variant": name, "seed": seed, **point}, file=sys.stderr, flush=True)
    return {"variant": name, "overrides": overrides, "seed": seed, "steps": steps, "curve": curve, "error": None}


def table(results):
    rows = []
    for r in results:
        if not r["curve"]:
            continue
        end = r["curve"][-1]
        reach = runner.first_reaching([(p["step"], p["realnames_exact"]) for p in r["curve"]], 0.8)
        rows.append([r["variant"], r["seed"], f"{end['step']:,}", f"{end['realnames_exact']:.1%}",
                     f"{end['realnames_first']:.1%}", f"{end['realnames_answer_nll']:.3f}",
                     f"{end['newnames_exact']:.1%}", f"{reach[0]:,}" if reach else "never"])
    return runner.markdown(["variant", "seed", "steps", "real names: exact", "first letter", "answer nats/char",
                            "generated names: exact", "80% on real names at step"], rows)


def main():
    ap = runner.variant_study(__doc__, RESULTS, VARIANTS, steps=3000, every=250, seeds="1234")
    args = ap.parse_args()
    if args.table:
        print(table(runner.load(args.results)))
        return
    runner.check_variants(ap, args.variants, VARIANTS)
    work = pathlib.Path(tempfile.mkdtemp(prefix="charlstm-copying-"))
    corpora = {"fresh": work / "fresh.txt", "seen": work / "seen.txt"}
    for names, path in corpora.items():  # the preset's corpus, and the same with names from the seen pool
        stories = corpus.open_rooms(200000, seed=5, names=names, closed_share=0.1)
        path.write_text("".join(s.text + "\n" for s in stories))
    jobs = [(v, VARIANTS[v], seed) for v in args.variants for seed in runner.seeds(args.seeds)]
    results = runner.run_all(jobs, lambda job: run(*job, args.steps, args.every, corpora, alone=args.parallel == 1),
                             args.parallel, args.results, key=lambda r: (r["variant"], r["seed"]))
    print(table(results))


if __name__ == "__main__":
    main()
