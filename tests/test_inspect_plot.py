"""`charlstm inspect` and `charlstm plot`: values, terminal rendering, the HTML page, curves."""

import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

import naive
from charlstm import assets, checkpoint, inspection, plot
from conftest import run_cli

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TEXT = "the cat sat on the mat.\nthe dog"


def test_trace_matches_the_model_step_by_step(four_run):
    ckpt = checkpoint.load(four_run)
    ids = ckpt.vocab.encode(TEXT)
    traced = inspection.trace(ckpt.params, ids)
    p64 = {k: v.astype(np.float64) for k, v in ckpt.params.items()}
    H, L = ckpt.spec.hidden, ckpt.spec.layers
    logits, final = naive.run("lstm", p64, ids[:, None], (np.zeros((L, 1, H)), np.zeros((L, 1, H))))
    z = logits[:, 0] - logits[:, 0].max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    bits = -logp[np.arange(len(ids) - 1), ids[1:]] / math.log(2)
    assert math.isnan(traced["surprisal"][0])
    np.testing.assert_allclose(traced["surprisal"][1:], bits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(traced["cell"][-1, :, :], final[1][:, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(traced["hidden"][-1, :, :], final[0][:, 0], rtol=1e-4, atol=1e-5)
    # every gate's mean, the memory c and the output h at every character, from the equations (PyTorch's
    # block order i, f, g, o), so that a gate read from another block than its own shows
    assert set(traced["gates"]) == {"input", "forget", "output"} and L == 1
    w_ih, w_hh = p64["lstm.weight_ih_l0"], p64["lstm.weight_hh_l0"]
    b = p64["lstm.bias_ih_l0"] + p64["lstm.bias_hh_l0"]
    h, c = np.zeros(H), np.zeros(H)
    for t, x in enumerate(ids):
        a = w_ih[:, x] + w_hh @ h + b
        i, f, g, o = naive.sigmoid(a[:H]), naive.sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), naive.sigmoid(a[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, gate in (("input", i), ("forget", f), ("output", o)):
            assert traced["gates"][name][t, 0] == pytest.approx(gate.mean(), rel=1e-4, abs=1e-6), (name, t)
        np.testing.assert_allclose(traced["cell"][t, 0], c, rtol=1e-4, atol=1e-5, err_msg=f"c at {t}")
        np.testing.assert_allclose(traced["hidden"][t, 0], h, rtol=1e-4, atol=1e-5, err_msg=f"h at {t}")


def test_quantities_and_errors(four_run):
    ckpt = checkpoint.load(four_run)
    traced = inspection.trace(ckpt.params, ckpt.vocab.encode(TEXT))
    rows = inspection.quantities(traced, ckpt.spec, ["surprisal", "forget", "cell:0:3", "hidden:0:1"], top=3)
    assert [r[2] for r in rows] == ["bits", "gate", "signed", "signed", "signed", "signed", "signed"]
    stds = [r[1].std() for r in rows[-3:]]
    np.testing.assert_allclose(stds, np.sort(traced["cell"][:, 0, :].std(axis=0))[::-1][:3], rtol=1e-6)
    for bad, message in [("cell:0:99", "units 0..31"), ("cell:x", "cell:LAYER:UNIT"), ("reset", "choose from")]:
        with pytest.raises(Exception, match=re.escape(message)):
            inspection.quantities(traced, ckpt.spec, [bad], 0)


def test_top_at_a_word_ranks_units_by_how_far_they_move_while_it_is_read(four_run, cli):
    ckpt = checkpoint.load(four_run)
    traced = inspection.trace(ckpt.params, ckpt.vocab.encode(TEXT))
    cell = traced["cell"][:, 0, :]  # (N, H)
    start = TEXT.index("dog")  # "the" is in a word before, "dog" only at the end
    moved = np.abs(cell[start + 2] - cell[start - 1])
    rows = inspection.quantities(traced, ckpt.spec, [], top=3, at=(TEXT, "dog"))
    units = [int(re.search(r"unit (\d+)", label).group(1)) for label, _, _ in rows]
    assert units == list(np.argsort(-moved, kind="stable")[:3]) and "moves most reading 'dog'" in rows[0][0]
    assert units != list(np.argsort(-cell.std(axis=0), kind="stable")[:3])  # not the text-wide ranking
    assert inspection._span("a cat scat", "cat") == (2, 5) and inspection._span("scat", "cat") == (1, 4)
    code, out, err = cli("inspect", "-c", four_run, TEXT, "--top", 1, "--at", "dog", "--color", "never")
    assert code == 0 and f"unit {units[0]} (moves most reading 'dog'" in out, err
    for args, message in [(["--at", "dog"], "give --top N too"), (["--top", 1, "--at", "cow"], "not in the text")]:
        code, out, err = cli("inspect", "-c", four_run, TEXT, *args)
        assert code != 0 and message in err and "Traceback" not in err and out == ""


def test_terminal_colours_wrap_and_reset(cli, four_run):
    code, out, err = cli("inspect", "-c", four_run, TEXT, "--show", "forget", "--top", 2, "--color", "always",
                         "--width", 10)
    assert code == 0, err
    lines = out.splitlines()
    headers = [line for line in lines if "scale:" in line]
    assert len(headers) == 3 and "forget gate, layer 0" in headers[0] and "varies most" in headers[1]
    body = [line for line in lines if line and "scale:" not in line]
    assert all(line.endswith("\x1b[0m") for line in body)  # every wrapped line closes its colour
    assert all(len(ANSI.sub("", line)) <= 10 for line in body)
    assert "".join(ANSI.sub("", line) for line in body[: math.ceil(len(TEXT) / 10)]) == TEXT.replace("\n", "↵")
    assert "\x1b[48;5;" in out  # 256-colour backgrounds


def test_no_colour_when_piped_or_no_color(cli, four_run, monkeypatch):
    code, out, _ = cli("inspect", "-c", four_run, "the cat", "--width", 40)
    assert code == 0 and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[1] == "the cat" and len(lines[2]) == 7 and set(lines[2]) <= set(inspection.BLOCKS)
    assert lines[2][0] != " "  # the first character has a surprisal: it is read after a newline
    lines = cli("inspect", "-c", four_run, "\nthe cat", "--width", 40)[1].splitlines()
    assert lines[1] == "↵the cat" and lines[2][0] == " "  # a text that starts a line itself: nothing before it
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in cli("inspect", "-c", four_run, "the cat")[1]
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert "\x1b[48;2;" in cli("inspect", "-c", four_run, "the cat", "--color", "always")[1]


def test_inspect_reads_stdin_and_reports_unknown_characters(cli, four_run):
    code, out, _ = cli("inspect", "-c", four_run, "-", stdin="the mat")
    assert code == 0 and "the mat" in out
    for piped in ("the mat\n", "the mat\r\n"):  # as echo writes it: the newline is not part of the text
        assert cli("inspect", "-c", four_run, "-", stdin=piped)[1] == out
    code, _, err = cli("inspect", "-c", four_run, "the MAT")
    assert code == 1 and "'A' 'M' 'T'" in err


def test_an_unquoted_text_gets_a_hint_to_quote_it(cli, four_run):
    code, out, err = cli("inspect", "-c", four_run, "the", "cat's", "mat")
    assert code == 2 and out == "" and err.endswith("quote it, as in charlstm inspect 'the cat'\"'\"'s mat'\n"), err


def test_html_page_is_self_contained(cli, four_run, tmp_path):
    page = tmp_path / "p.html"
    code, _, err = cli("inspect", "-c", four_run, TEXT, "--html", page, "--top", 2)
    assert code == 0 and "wrote" in err
    text = page.read_text()
    assert f"<title>charlstm inspect: {four_run}</title>" in text  # the checkpoint as given, not resolved
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched from elsewhere
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    options = re.findall(r"<option value=\"\d+\">([^<]*)</option>", text)
    assert options[:4] == ["surprisal (bits)", "input gate, layer 0 (mean over 32 units)",
                           "forget gate, layer 0 (mean over 32 units)", "output gate, layer 0 (mean over 32 units)"]
    assert len(options) == 6 and text.count("<span data-i=") == len(TEXT)
    data = json.loads(re.search(r"const DATA = (.*);\n", text).group(1).replace("<\\/", "</"))
    assert data["chars"] == list(TEXT) and len(data["rows"][0]["values"]) == len(TEXT)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium) to run the page's script")
def test_the_page_colours_values_as_the_terminal_does(tmp_path):
    """The page computes its colours in JavaScript (shipping them made the page twice as large): its
    colour function, run by Chromium, gives inspection.colour's RGB for every kind of quantity."""
    script = re.search(r"function colour\(v, row\) \{\{.*?\n\}\}\n", inspection.PAGE, re.S).group(0)
    script = script.replace("{{", "{").replace("}}", "}")
    cases = [(v, low, high, kind) for kind, low, high in (("bits", 0.0, 4.2), ("gate", 0.0, 1.0), ("signed", -0.7, 0.7))
             for v in (-1.0, -0.7, -0.3, 0.0, 0.13, 0.5, 0.69, 1.0, 3.3, 9.0, None)]
    page = tmp_path / "colours.html"
    page.write_text("<html><body><pre id='out'></pre><script>" + script + "document.getElementById('out').textContent = "
                    + json.dumps(cases) + ".map(([v, low, high, kind]) => colour(v, {low, high, kind})).join(';');"
                    + "</script></body></html>")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    got = re.search(r'<pre id="out">([^<]*)</pre>', dom).group(1).split(";")
    want = ["rgb(%d, %d, %d)" % inspection.colour(math.nan if v is None else v, low, high, kind) for v, low, high, kind in cases]
    assert got == want


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium) to render the page")
def test_html_page_renders_in_headless_chromium(cli, four_run, tmp_path):
    page = tmp_path / "p.html"
    cli("inspect", "-c", four_run, TEXT, "--html", page)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    # the script ran: every character has its colour, the legend its numbers
    spans = re.findall(r'<span ([^>]*data-i="\d+"[^>]*)>', dom)  # attributes in whatever order Chromium writes
    colours = [re.search(r"background-color: rgb\((\d+), (\d+), (\d+)\)", a) for a in spans]
    titles = [re.search(r'title="([^"]*)"', a) for a in spans]
    assert all(colours) and all(titles), "the page's script did not colour every character"
    coloured = [(*c.groups(), t.group(1)) for c, t in zip(colours, titles)]
    assert len(coloured) == len(TEXT)
    assert len({c[:3] for c in coloured}) > 5  # the colours vary with the surprisal
    assert float(coloured[0][3]) >= 0 and float(coloured[1][3]) >= 0
    assert re.search(r'<span id="low">0\.00</span>', dom) and "linear-gradient" in dom
    payload = json.loads(re.search(r"const DATA = (.*);\n", page.read_text()).group(1))
    row = payload["rows"][0]  # the one shown: its colours come from the page's script, not from Python
    assert "colours" not in row
    want = [inspection.colour(math.nan if v is None else v, row["low"], row["high"], row["kind"]) for v in row["values"]]
    assert [tuple(map(int, c[:3])) for c in coloured] == want
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1000,600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_draws_both_curves_with_axes(cli, four_run):
    code, out, err = cli("plot", four_run, "--width", 50, "--height", 8)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1] == "loss (nats/char)"
    assert any("┤" in line for line in lines) and any(line.strip().startswith("└") for line in lines)
    assert "train loss" in lines[-1] and "validation loss" in lines[-1]
    assert any(chr(0x2800) < ch <= chr(0x28FF) for line in lines for ch in line)
    records = plot.read_metrics(four_run)
    last = [r for r in records if "train_loss" in r][-1]["step"]
    assert str(last) in out
    code, out, _ = cli("plot", four_run, "--x", "time")
    assert "seconds" in out


def test_braille_points_land_where_the_values_are():
    lines = plot.braille_plot({"a": ("a", "34", [0, 1], [0.0, 1.0])}, width=2, height=1, colour=False)
    # (0, 0) is the bottom-left dot of a 4 x 4 dot grid, (1, 1) the top-right, joined by a diagonal:
    # dots (col 0, row 3) and (1, 2) in the first character, (2, 1) and (3, 0) in the second
    assert lines[0].endswith("┤" + chr(0x2800 | 0x40 | 0x20) + chr(0x2800 | 0x02 | 0x08))


def test_the_top_tick_says_when_the_first_losses_lie_above_the_scale():
    steep = {"a": ("train loss", "34", list(range(20)), [9.0] + [2.0 - 0.05 * i for i in range(19)])}
    ticks = [line.split("┤")[0].strip() for line in plot.braille_plot(steep, width=20, height=4, colour=False)
             if "┤" in line]
    assert ticks[0] == "≥1.95"  # 9.0 and 2.0 (the first tenth) are drawn on the top row, whose value is 1.95
    rising = {"a": ("validation loss", "34", list(range(20)), [1.0 + 0.05 * i for i in range(20)])}  # nothing above
    assert [line.split("┤")[0].strip() for line in plot.braille_plot(rising, width=20, height=4, colour=False)
            if "┤" in line][0] == "1.95"


def test_without_colour_each_curve_has_its_own_mark_and_an_accuracy_its_own_scale():
    """In a pipe (no colour) the validation curve is drawn with • and keyed so, where both curves were
    braille dots; an accuracy's scale is 0 to 1 whatever it scored (one point gave ticks of -0.5 and 0.5);
    a step of 1,200 is written so, not 1.2e+03."""
    curves = {"train": ("train loss", "34", [0, 600, 1200], [3.0, 2.0, 1.5]),
              "val": ("validation loss", "33", [600, 1200], [2.2, 1.9])}
    lines = plot.braille_plot(curves, width=30, height=8, colour=False)
    assert lines[-1].split() == ["⣿", "train", "loss", "•", "validation", "loss"]
    assert sum(line.count("•") for line in lines[:-1]) >= 2 and "1,200" in lines[-3]
    accuracy = plot.braille_plot({"a": ("cloze accuracy", "32", [50], [0.25])}, width=10, height=6,
                                 colour=False, y_range=(0.0, 1.0))
    ticks = [line.split("┤")[0].strip() for line in accuracy if "┤" in line]
    assert [t for t in ticks if t] == ["1", "0.4", "0"]
    assert len({line.index("┤") for line in accuracy if "┤" in line}) == 1  # the axis in one column


def test_plot_tolerates_a_line_being_written(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 5, "train_loss": 2.0}\n{"step": 10, "train_loss": 1.5}\n{"st')
    assert [r["step"] for r in plot.read_metrics(tmp_path)] == [5, 10]
    (tmp_path / "metrics.jsonl").write_text('{"st\n{"step": 10, "train_loss": 1.5}\n')
    with pytest.raises(Exception, match="line 1 is not JSON"):
        plot.read_metrics(tmp_path)


def test_plot_errors_and_png(cli, tmp_path, four_run):
    code, _, err = cli("plot", tmp_path)
    assert code == 1 and "no metrics.jsonl" in err
    by_checkpoint, by_run = cli("plot", four_run / "best.npz"), cli("plot", four_run)  # a checkpoint: its run's
    assert by_checkpoint[0] == 0 and by_checkpoint[1].split("\n", 1)[1] == by_run[1].split("\n", 1)[1]
    stray = tmp_path / "weights.bin"
    stray.write_bytes(bytes(range(128, 256)))
    code, _, err = cli("plot", stray)
    assert code == 1 and err == f"error: {stray} is not a metrics.jsonl; give a run directory, such as runs/rooms\n"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code, _, err = cli("plot", four_run, "--png", tmp_path / "x.png")
        assert code == 1 and "pip install matplotlib" in err
    else:
        code, _, err = cli("plot", four_run, "--png", tmp_path / "x.png")
        assert code == 0 and (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


def test_run_reads_the_text_as_the_start_of_a_line(four_run):
    ckpt = checkpoint.load(four_run)
    shown, traced = inspection.run(ckpt, TEXT)
    after_newline = inspection.trace(ckpt.params, ckpt.vocab.encode("\n" + TEXT))
    assert shown == TEXT and not math.isnan(traced["surprisal"][0])
    np.testing.assert_allclose(traced["surprisal"], after_newline["surprisal"][1:], rtol=1e-6)
    np.testing.assert_allclose(traced["hidden"], after_newline["hidden"][1:], rtol=1e-6)


def test_a_model_trained_on_lines_reads_each_line_of_the_text_afresh():
    """The shipped rooms model was trained on lines (data.mode lines), each from the zero state after a
    newline: a second story is traced as it would be alone, its pointer's memory included; a stream-mode
    model (four_run, the test above) carries its state on."""
    ckpt = checkpoint.load(assets.MODEL)
    assert ckpt.config.data.mode == "lines" and ckpt.spec.pointer
    first = "Mady walks in to the room, Monica also walks in to the room. Mady said hi to Monica."
    second = "Tom and Alice walk in to the room together, later Zoe walks in to the room. Tom said hi to Zoe."
    _, both = inspection.run(ckpt, first + "\n" + second)
    _, alone = inspection.run(ckpt, second)
    rest = slice(len(first) + 1, None)
    for name in ("surprisal", "hidden", "cell", "copy"):
        np.testing.assert_allclose(both[name][rest], alone[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert both["surprisal"][rest].max() < 8  # carried across, the second story cost up to 29 bits a character


def test_a_text_that_names_a_file_is_inspected_as_text_with_a_note(four_run, tmp_path, monkeypatch):
    (tmp_path / "bird.tab").write_text("the dog sat.")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("inspect", "-c", four_run, "bird.tab", "--color", "never")
    assert code == 0 and out.splitlines()[1] == "bird.tab"
    assert "inspecting the text 'bird.tab' itself" in err and "charlstm inspect - < bird.tab" in err
    code, _, err = run_cli("inspect", "-c", four_run, "the dog", "--color", "never")
    assert code == 0 and "note" not in err


def test_top_adds_units_below_the_surprisal_unless_show_replaces_it(four_run):
    code, out, err = run_cli("inspect", "-c", four_run, TEXT, "--top", 3, "--width", 80)
    assert code == 0, err
    headers = [line.split("  scale:")[0] for line in out.splitlines() if "scale:" in line]
    assert headers[0] == "surprisal (bits)" and len(headers) == 4
    assert all("varies most" in h for h in headers[1:])
    code, out, err = run_cli("inspect", "-c", four_run, TEXT, "--top", 3, "--show", "forget", "--width", 80)
    headers = [line for line in out.splitlines() if "scale:" in line]
    assert len(headers) == 4 and "forget gate" in headers[0] and "surprisal" not in out


def test_plot_of_a_text_file_says_what_plot_takes(tmp_path):
    """`charlstm plot small.txt` said only "small.txt line 1 is not JSON"."""
    text = tmp_path / "small.txt"
    text.write_text("the cat sat on the mat.\nthe dog lay on the rug.\n")
    with pytest.raises(Exception, match="small.txt line 1 is not JSON; plot takes a run directory, its metrics.jsonl"):
        plot.read_metrics(text)
