"""The speed tables of docs/performance.md, one block per kind of host: what bench/speed.py --doc writes.
A module speed.py imports, not a script.

Between the markers <!-- speed-table --> and <!-- /speed-table --> the page keeps one block per kind of
processor measured (runner.cpu_kind: model name, family and model, and which of avx2, avx512f and amx_tile
it has). A block opens with a marker naming its kind, <!-- speed-host: KIND -->, then a heading with the
host and the date, the command and what it ran on, and the tables. --doc rewrites the block of the kind it
ran on, or adds one at the end when the page has none of that kind; the blocks of other hosts, and any text
before the first block, stay as they are. A block is rewritten whole: --configs S alone leaves its host with
the S rows alone.
"""

import re

import runner  # bench/runner.py, beside this script: the CPU's description

BEGIN, END = "<!-- speed-table -->", "<!-- /speed-table -->"
HOST = re.compile(r"^<!-- speed-host: (.*?) -->$", re.M)


def heading(run):
    """The line above a host's tables: the processor, its cores and the date."""
    return f"### {runner.cpu_kind(run['cpu'])}; {run['cpu']['cores']} cores; measured {run['date']}"


def markdown(run, rows):
    """A host's block without its marker: the heading, the command and what it ran on, then the tables
    (chars/s, ours against PyTorch, per configuration) and the memory line."""
    def num(x):
        return "-" if x is None else f"{x:,}"

    def ratio(x):
        return "-" if x is None else f"{x:.2f}x"

    def frac(x):
        return "-" if x is None else f"{x:.2f}"

    kernel = f"OpenBLAS kernel {run['blas_kernel']}"
    if run["kernel_overridden"]:
        kernel += (f", forced ({' '.join(f'{k}={v}' for k, v in run['kernel_overrides'].items())}; "
                   f"this processor's own is {run['blas_kernel_native']})")
    else:
        kernel += " (the processor's own)"
    torch = f"torch {run['torch']} with {run['torch_threads']} threads" if run["torch"] else "no torch"
    out = [heading(run), "", f"`{run['command']}`: {kernel}, {run['threads']} threads, each side in its own "
           f"process ({torch}, numpy {run['numpy']}, blas {run['blas']}).", "",
           "| config | H | L | B | T | charlstm train | PyTorch train | ratio | GEMM bound | charlstm / bound | "
           "PyTorch / bound | workers |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "train_chars_per_s" in r:
            out.append(f"| {r['config']} | {r['H']} | {r['L']} | {r['B']} | {r['T']} | {num(r['train_chars_per_s'])} | "
                       f"{num(r['torch_train_chars_per_s'])} | {ratio(r['train_ratio'])} | "
                       f"{num(r['gemm_bound_chars_per_s'])} | {frac(r['gemm_fraction'])} | "
                       f"{frac(r['torch_gemm_fraction'])} | {r['train_workers'] or '-'} |")
    out += ["", "| config | sample b1 | PyTorch b1 oneDNN on / off | ratio to faster | sample b64 | "
            "PyTorch b64 on / off | ratio | eval | PyTorch eval | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "sample_b1_chars_per_s" in r or "eval_chars_per_s" in r:
            g = r.get
            out.append(f"| {r['config']} | {num(g('sample_b1_chars_per_s'))} | {num(g('torch_sample_b1_onednn_on'))} / "
                       f"{num(g('torch_sample_b1_onednn_off'))} | {ratio(g('sample_b1_ratio_to_faster'))} | "
                       f"{num(g('sample_b64_chars_per_s'))} | {num(g('torch_sample_b64_onednn_on'))} / "
                       f"{num(g('torch_sample_b64_onednn_off'))} | {ratio(g('sample_b64_ratio_to_faster'))} | "
                       f"{num(g('eval_chars_per_s'))} | {num(g('torch_eval_chars_per_s'))} | {ratio(g('eval_ratio'))} |")
    for r in rows:
        if "memory" in r:
            m = r["memory"]
            out += ["", f"Peak memory of `charlstm train` on {r['config']} ({m['processes']} processes): "
                    f"{m['peak_mb']:.0f} MB proportional set size, of which {m['processes']} x {m['baseline_mb']:.0f} MB "
                    f"interpreter baseline; parameters, gradients, Adam moments and window buffers need "
                    f"{m['needed_mb']:.0f} MB: ratio {m['ratio']:.2f}."]
    return "\n".join(out)


def read_doc(path):
    """The page's text, or "error: ..." when it cannot be rewritten (checked before measuring)."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        return f"error: cannot read {path}: {e.strerror}"
    if BEGIN not in text or END not in text:
        return f"error: {path} has no {BEGIN} ... {END} markers to write the tables between"
    return text


def blocks(region):
    """The text between the markers as (what stands before the first block, [(kind, block text)])."""
    parts = HOST.split(region)  # [before, kind, text, kind, text, ...]
    return parts[0], list(zip(parts[1::2], parts[2::2]))


def with_host(region, run, rows):
    """region with this run's block in place of its host kind's, or added at the end."""
    before, found = blocks(region)
    kind = runner.cpu_kind(run["cpu"])
    ours = markdown(run, rows)
    if kind not in (k for k, _ in found):
        found.append((kind, ours))
    found = [(k, ours if k == kind else text) for k, text in found]
    parts = [before.strip(), *(f"<!-- speed-host: {k} -->\n{text.strip()}" for k, text in found)]
    return "\n\n".join(p for p in parts if p) + "\n"


def update_doc(path, run, rows):
    """Write this run's block into the page at path; None, or "error: ..." when the page cannot be read."""
    text = read_doc(path)
    if text.startswith("error:"):
        return text
    head, rest = text.split(BEGIN, 1)
    region, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{head}{BEGIN}\n{with_host(region, run, rows)}{END}{tail}")
    return None


if __name__ == "__main__":  # a module, not a script: --help says what it is for
    runner.parser(__doc__).parse_args()
    print(__doc__)
