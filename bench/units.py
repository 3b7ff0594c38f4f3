"""Which memory units of a rooms model hold the name it is about to say?

    python bench/units.py [-c data/rooms-closed.npz] [--stories 400] [--top 6]

Runs the prompts of data/rooms-cloze.tsv up to their blank ("... said hi to ") through the model and
takes every unit's memory at that moment (an LSTM's cell state c; a GRU's or RNN's hidden state h). For
each unit, the share of its variance that the answer's name explains (η², between-name variance over
total variance): 1 means the unit's value alone tells which name comes next, 0 that it does not vary
with the name. Prints the units with the highest η² and their mean value for every name. Then
forgetting: in the second story form ("A and B walk in ..., later C walks in ... A said hi to ___") the
answer is the newcomer C, and B, who would be the answer had C not come, is no longer needed. A
nearest-centroid read-out of the memory at the blank (fitted on half the stories, scored on the other
half) says how well each name can still be read there.
Used for docs/inspect.md.
"""

import re

import numpy as np

import runner  # bench/runner.py, beside this script
from charlstm import checkpoint, evaluate, inspection


def eta_squared(values, labels):
    """(units,) share of each column's variance explained by the label groups."""
    total = values.var(axis=0) * len(values)
    between = sum(len(g) * (g.mean(axis=0) - values.mean(axis=0)) ** 2
                  for g in (values[labels == name] for name in np.unique(labels)))
    return between / np.maximum(total, 1e-12)


def main():
    ap = runner.parser(__doc__)
    ap.add_argument("-c", "--checkpoint", default=str(runner.DATA / "rooms-closed.npz"),
                    help="the model [default: data/rooms-closed.npz, the closed world's LSTM]")
    ap.add_argument("--cloze", default=str(runner.DATA / "rooms-cloze.tsv"),
                    help="the stories, read up to their blank [default: data/rooms-cloze.tsv]")
    ap.add_argument("--stories", type=int, default=400)
    ap.add_argument("--top", type=int, default=6)
    args = ap.parse_args()

    ckpt = checkpoint.load(args.checkpoint)
    prompts, answers = evaluate.read_cloze(args.cloze)
    prompts, answers = prompts[: args.stories], np.array(answers[: args.stories])
    layer = ckpt.spec.layers - 1
    states = []
    for prompt in prompts:
        _, traced = inspection.run(ckpt, prompt.split("___")[0])
        states.append(traced["cell" if "cell" in traced else "hidden"][-1, layer])  # a GRU's memory is h
    states = np.array(states)  # (stories, H)
    eta = eta_squared(states, answers)
    names = sorted(set(answers))
    order = np.argsort(-eta)[: args.top]
    print(f"{len(prompts)} stories, layer {layer}: units whose memory at '... said hi to ' best tells the answer")
    print(f"{'unit':>5} {'eta2':>6}  " + " ".join(f"{n[:7]:>7}" for n in names))
    for u in order:
        means = [states[answers == n, u].mean() for n in names]
        print(f"{u:>5} {eta[u]:6.3f}  " + " ".join(f"{m:7.2f}" for m in means))
    print(f"median eta2 over all {states.shape[1]} units: {np.median(eta):.3f}")

    form2 = re.compile(r"^(\w+) and (\w+) walk in to the room together, later (\w+) walks in.* (\w+) said hi to ___")
    rows = [(i, m.groups()) for i, p in enumerate(prompts) if (m := form2.match(p))]
    if len(rows) >= 20:
        index = np.array([i for i, _ in rows])
        first, second, newcomer, speaker = zip(*(g for _, g in rows))
        left_over = np.array([b if s == a else a for a, b, s in zip(first, second, speaker)])
        print(f"\nforgetting, {len(rows)} stories of the second form: can the name be read from the memory at the blank?")
        print(f"  the newcomer (the answer):            {readout(states[index], np.array(newcomer)):.2f}")
        print(f"  the other one of the first two:       {readout(states[index], left_over):.2f}")
        print(f"  the speaker:                          {readout(states[index], np.array(speaker)):.2f}")
        print(f"  (chance: 1 in {len(set(newcomer))})")


def readout(states, labels):
    """Accuracy of a nearest-centroid classifier fitted on the even rows and scored on the odd ones."""
    z = (states - states.mean(axis=0)) / (states.std(axis=0) + 1e-6)
    fit, test = z[0::2], z[1::2]
    names = np.unique(labels[0::2])
    centroids = np.array([fit[labels[0::2] == n].mean(axis=0) for n in names])
    guess = names[np.argmin(((test[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)]
    return float((guess == labels[1::2]).mean())


if __name__ == "__main__":
    main()
