"""The package's layers: each imports only the layers below it, with no cycles.

The graph is built from the source (every import statement, those inside
functions too), so an import hidden in a function cannot close a loop unseen.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Rank of each sub-package of nlmeans; a module may import modules of a lower
# rank, or of its own folder (acyclically). Folders of equal rank stay apart.
LAYERS = {"kernels": 1, "model": 1, "io": 1, "backends": 2, "methods": 3, "planning": 4,
          "runners": 5, "api": 6, "compat": 7, "napari_plugin": 8}
# The front end sees the API, the runners' public functions and the I/O layer.
CLI_MAY_IMPORT = ("nlmeans", "nlmeans.api", "nlmeans.io", "nlmeans.runners")


def module_name(path, root, package):
    """'package.a.b' for root/a/b.py (package.a for root/a/__init__.py)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package] + parts)


def imports_of(path, name, is_package):
    """(imported module, line, inside a function, source line) for each import in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    lines = path.read_text().splitlines()
    found = []

    def visit(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    parent = name.split(".")
                    parent = parent[:len(parent) - child.level + (1 if is_package else 0)]
                    base = ".".join(parent + ([base] if base else []))
                # `from pkg import mod` names a module when pkg.mod is one.
                found.extend((f"{base}.{a.name}", child.lineno, nested) for a in child.names)
                found.append((base, child.lineno, nested))
            visit(child, inner)

    visit(tree, False)
    return [(target, line, nested, lines[line - 1]) for target, line, nested in found]


def import_graph(root, package):
    """{module: {imported module of the same package: first line}}, and the raw
    imports per module, for the package whose folder is `root`."""
    modules = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    graph, raw = {}, {}
    for name, path in modules.items():
        raw[name] = imports_of(path, name, path.name == "__init__.py")
        edges = {}
        for target, line, _, _ in raw[name]:
            if target in modules and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph, raw


def find_cycles(graph):
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def layer_of(module):
    """The layer's folder of an nlmeans module ('' for the package's own __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else ""


def upward_imports(graph):
    """'a -> b' for each import of a module from a layer that is not below."""
    wrong = []
    for module, edges in graph.items():
        here = layer_of(module)
        for target in edges:
            there = layer_of(target)
            if here == "" or there == here:
                continue  # the package's face imports anything; a folder imports itself
            if there == "" or LAYERS.get(there, 99) >= LAYERS.get(here, 0):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


GRAPH, RAW = import_graph(ROOT / "nlmeans", "nlmeans")


def test_every_module_is_in_a_layer():
    assert sorted({layer_of(m) for m in GRAPH} - {""}) == sorted(LAYERS)
    # Besides the folders, only the package's faces: __init__ and __main__.
    assert [m for m in GRAPH if m.count(".") == 1 and layer_of(m) not in LAYERS
            and m != "nlmeans.__main__"] == []


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_layers_import_downwards_only():
    assert upward_imports(GRAPH) == []


def test_a_planted_cycle_is_found(tmp_path):
    # The checks above must be able to fail: a package whose import in a function
    # closes a loop, and a model module that imports the API.
    package = tmp_path / "nlmeans"
    (package / "model").mkdir(parents=True)
    (package / "api").mkdir()
    for folder in (package, package / "model", package / "api"):
        (folder / "__init__.py").write_text("")
    (package / "model" / "noise.py").write_text(
        "def estimate():\n    from nlmeans.api.resolve import resolve\n    return resolve\n")
    (package / "api" / "resolve.py").write_text("from nlmeans.model import noise\n")
    graph, _ = import_graph(package, "nlmeans")
    assert find_cycles(graph) == [["nlmeans.api.resolve", "nlmeans.model.noise"]]
    assert upward_imports(graph) == ["nlmeans.model.noise -> nlmeans.api.resolve"]


def deferred_without_reason(raw, root):
    """'module:line: import' for each import inside a function with no reason
    written beside it: a comment on its line or on the import block's lines
    just above it."""
    unexplained = []
    for module, imports in raw.items():
        path = root / pathlib.Path(*module.split(".")[1:])
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        lines = path.read_text().splitlines()
        for _, line, nested, source in imports:
            if not nested:
                continue
            block = line - 1
            while block > 0 and (not lines[block - 1].strip()
                                 or lines[block - 1].strip().startswith(("from ", "import ", "#"))):
                block -= 1  # the imports (and comments) just above belong with it
            if not any("#" in text for text in lines[block:line]):
                unexplained.append(f"{module}:{line}: {source.strip()}")
    return sorted(set(unexplained))


def test_deferred_imports_have_a_reason(tmp_path):
    """Imports inside functions (an optional dependency, a measured start-up
    cost) say why; the check finds one that does not."""
    assert deferred_without_reason(RAW, ROOT / "nlmeans") == []
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "noise.py").write_text(
        "def f():\n    import numpy  # a reason\n\n\ndef g():\n    import json\n")
    assert deferred_without_reason({"nlmeans.model.noise": imports_of(
        tmp_path / "model" / "noise.py", "nlmeans.model.noise", False)}, tmp_path) == [
        "nlmeans.model.noise:6: import json"]


def test_the_command_line_uses_the_public_layers():
    graph, raw = import_graph(ROOT / "cli", "nlmeans_cli")
    assert find_cycles(graph) == []
    below = sorted({f"{module}: {target}" for module, imports in raw.items()
                    for target, _, _, _ in imports
                    if target.split(".")[0] == "nlmeans"
                    and not any(target == allowed or target.startswith(allowed + ".")
                                for allowed in CLI_MAY_IMPORT[1:])
                    and target != "nlmeans" and not _public_name(target)})
    assert below == []


def _public_name(target):
    """Whether `target` is nlmeans.NAME for a name the package exports."""
    import nlmeans

    parts = target.split(".")
    return len(parts) == 2 and parts[1] in nlmeans.__all__


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_has_a_docstring(layer):
    # A newcomer opens the folder's __init__ to learn what the layer is for.
    init = ROOT / "nlmeans" / layer / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"{layer}/__init__.py"
