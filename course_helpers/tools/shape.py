"""The package's shape, read from its source: the import graph, cycles, line counts, patches.

Used by tests/test_packaging.py (no cycles, no module over 460 lines, no run-time patching of
TensorFlow or Keras) and by benchmarks/run.py (the "Package" section of RESULTS.md).

    python -m course_helpers.tools.shape        # print lines, the largest module, the graph
"""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]
ROOT = PKG.parent
MAX_LINES = 460


def module_files(pkg=PKG) -> dict:
    """Dotted module name -> file, for every module of the package (subpackages included)."""
    out = {}
    for path in sorted(Path(pkg).rglob("*.py")):
        parts = list(path.relative_to(Path(pkg).parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, source: str, is_package: bool, known) -> set:
    """The modules in ``known`` that module ``name`` imports anywhere in ``source`` (function
    bodies too), the package's root ``__init__`` left out (every module imports it)."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                target = f"{mod}.{alias.name}"
                found.add(target if target in known else mod)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    root = name.split(".")[0]
    return {m for m in found if m in known and m != name and m != root}


def import_graph(pkg=PKG) -> dict:
    """Module -> the package's modules it imports."""
    mods = module_files(pkg)
    return {n: imports_of(n, p.read_text(), p.name == "__init__.py", mods) for n, p in mods.items()}


def find_cycle(graph: dict):
    """One import cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                cycle = visit(m)
                if cycle:
                    return cycle
        state[n] = "done"
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            if cycle:
                return cycle
    return None


_TF_MODULES = ("tensorflow", "tf_keras", "keras")
_PATCHED_ATTRIBUTES = {"__call__", "call", "convolution_op", "__init__", "__getattr__",
                       "__getattribute__", "__setattr__", "__class__"}


def patches_in(source: str) -> list:
    """Line numbers that patch TensorFlow/Keras at run time: calls of ``object``'s or
    ``type``'s ``__setattr__``, assignments to a method such as ``__call__``, or to attributes of anything imported
    from TensorFlow or Keras."""
    tree = ast.parse(source)
    tf_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tf_names |= {(a.asname or a.name).split(".")[0] for a in node.names
                         if a.name.split(".")[0] in _TF_MODULES}
        elif isinstance(node, ast.ImportFrom) and not node.level \
                and (node.module or "").split(".")[0] in _TF_MODULES:
            tf_names |= {a.asname or a.name for a in node.names}

    def root(expr):
        while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    def bad_target(t):
        return isinstance(t, ast.Attribute) and (t.attr in _PATCHED_ATTRIBUTES or root(t) in tf_names)

    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "__setattr__":
                found.append(node.lineno)       # setattr through object's or type's __setattr__
            elif isinstance(f, ast.Name) and f.id in ("setattr", "delattr") and node.args:
                attr = node.args[1] if len(node.args) > 1 else None
                if root(node.args[0]) in tf_names or (isinstance(attr, ast.Constant)
                                                      and attr.value in _PATCHED_ATTRIBUTES):
                    found.append(node.lineno)
        for t in targets:
            if any(bad_target(e) for e in (t.elts if isinstance(t, ast.Tuple) else [t])):
                found.append(node.lineno)
    return sorted(set(found))


def line_counts(pkg=PKG) -> dict:
    """File (relative to the repository) -> number of lines, for every module of the package."""
    return {str(p.relative_to(Path(pkg).parent)): len(p.read_text().splitlines())
            for p in module_files(pkg).values()}


def line_counts_at(commit: str, root=ROOT, folder: str = "course_helpers") -> dict | None:
    """The same for the package as it was at ``commit`` (read with ``git show``), or None
    where git or the commit is not available (a shallow clone, an archive)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True).stdout
    try:
        names = [n for n in git("ls-tree", "-r", "--name-only", commit, folder).splitlines()
                 if n.endswith(".py")]
        return {n: len(git("show", f"{commit}:{n}").splitlines()) for n in names}
    except (OSError, subprocess.CalledProcessError):
        return None


def summary(before_commit: str | None = None) -> dict:
    """Lines now (and at ``before_commit``), the largest module, the import graph, a cycle."""
    now = line_counts()
    graph = import_graph()
    out = {"lines": sum(now.values()), "modules": len(now),
           "lines_without_tools": sum(n for f, n in now.items() if "/tools/" not in f),
           "largest": max(now.items(), key=lambda kv: kv[1]),
           "graph": graph, "cycle": find_cycle(graph)}
    if before_commit:
        before = line_counts_at(before_commit)
        if before:
            out.update(before_commit=before_commit, lines_before=sum(before.values()),
                       modules_before=len(before),
                       largest_before=max(before.items(), key=lambda kv: kv[1]))
    return out


def main() -> int:
    """``python -m course_helpers.tools.shape``: the package's shape, printed."""
    s = summary()
    print(f"{s['lines']} lines in {s['modules']} modules ({s['lines_without_tools']} without "
          f"tools/); largest: {s['largest'][0]} ({s['largest'][1]} lines)")
    for name, deps in sorted(s["graph"].items()):
        print(f"  {name} -> {', '.join(sorted(deps)) or '-'}")
    print("import cycle: " + " -> ".join(s["cycle"]) if s["cycle"] else "no import cycles")
    return 1 if s["cycle"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
