"""The package's shape: no import cycles between its modules, and no module over MAX_LINES lines.

An import anywhere in a module counts, inside a function too: a cycle hidden in a function body still
means two files that cannot be read, or tested, one without the other. Read from the source with ast
(standard library only); nothing of the package is imported.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "charlstm"
MAX_LINES = 400


def modules(root):
    """{dotted name: path} of every module of the package at root (a package is named by its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name, path, known):
    """The modules of `known` that the module `name` (at path) imports, at any nesting level. `from X
    import a` imports X.a when that is a module, else X; a package's __init__ is not counted as imported
    when only its submodules are named (`from . import model`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return {m for m in found if m in known and m != name}


def import_graph(root):
    known = modules(root)
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(graph):
    """Every strongly connected group of two or more modules, each as one cycle through it (a list of
    names, the first repeated at the end), sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_cycle_through(graph, group) for group in groups)


def _cycle_through(graph, group):
    """One cycle through the smallest name of a strongly connected group, by breadth-first search."""
    start = min(group)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]] & group):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    raise AssertionError("a strongly connected group without a cycle")


def test_no_import_cycles():
    found = cycles(import_graph(PACKAGE))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_over_the_limit():
    long = {name: n for name, path in modules(PACKAGE).items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_check_sees_cycles_at_any_depth(tmp_path):
    """The checker itself: a cycle through an import inside a function, and one through a subpackage,
    are found; imports that only name submodules of a package are not a cycle with it."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    if True:\n        from .a import thing\n",  # a <-> b, one side in a function
        "c.py": "import os\nfrom .sub import d\n",
        "sub/__init__.py": "from . import d\n",  # the package names its module: no cycle with it
        "sub/d.py": "from .. import e\n",
        "e.py": "from .sub.d import x\n",  # sub.d <-> e
        "f.py": "from . import c, e\n",  # imports into a cycle, but not part of one
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.e", "pkg.sub.d", "pkg.e"]]
    (pkg / "b.py").write_text("import os\n")
    (pkg / "e.py").write_text("x = 1\n")
    assert cycles(import_graph(pkg)) == []


def test_the_readme_opens_with_a_quick_start_that_fits_a_screen():
    """README's first screen, up to its second section: install, the two blanks, train, sample your own
    model, and the test command CI runs (.ci/run), in at most 40 lines."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    first = text[: text.index("\n## ", text.index("## Quick start"))].splitlines()
    assert len(first) <= 40, len(first)
    assert "<!-- test-command -->" in first and "pip install -e '.[test]' && python -m pytest -q" in first
    assert any(line.startswith("pip install . && charlstm sample --greedy") for line in first)
    assert any(line.startswith("charlstm sample -c runs/") for line in first)


def test_the_torch_extra_is_installed_from_the_checkout_everywhere_it_is_named():
    """charlstm is not on a package index, so `pip install 'charlstm[torch]'` fails on a fresh machine:
    the code's messages and the docs say `pip install '.[torch]'` (from the checkout). bench/results holds
    the config comments of past runs as they were written, and is left out."""
    root = PACKAGE.parent
    files = [root / "README.md", root / "pyproject.toml", *root.glob("docs/*.md"), *root.glob("bench/*.py"),
             *root.glob("bench/*.md"), *root.glob("configs/*.yaml"), *PACKAGE.rglob("*.py")]
    naming = [str(f.relative_to(root)) for f in files if "charlstm[torch]" in f.read_text(encoding="utf-8")]
    assert not naming, naming
    assert "pip install '.[torch]'" in (root / "README.md").read_text(encoding="utf-8")
