"""The layers of the code base (DESIGN.md, "Layers"): a module imports only modules of its own
layer or of layers below it, the imports between modules form no cycle, and every module
imports on its own.

Bottom to top: errors, registry < distributions, nn, data, plots, tables, tracking < models, guides
< infer < zoo < experiment < compare, studies (loops over experiments) < cli. The package ``pyro_dgm`` itself (its ``__init__``, which gathers the public
names) and ``pyro_dgm.__main__`` sit at the top with cli. Imports are read from the source with
``ast``, including those inside functions: a lazy import that climbs a layer still ties the lower
module to the upper one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"pyro_dgm": ROOT / "pyro_dgm", "pyro_dgm.models": ROOT / "models",
           "pyro_dgm.guides": ROOT / "guides"}
LAYERS = (
    ("pyro_dgm.errors", "pyro_dgm.registry"),
    ("pyro_dgm.distributions", "pyro_dgm.nn", "pyro_dgm.data", "pyro_dgm.plots",
     "pyro_dgm.tables", "pyro_dgm.tracking"),
    ("pyro_dgm.models", "pyro_dgm.guides"),
    ("pyro_dgm.infer",),
    ("pyro_dgm.zoo",),
    ("pyro_dgm.experiment",),
    ("pyro_dgm.compare", "pyro_dgm.studies"),
    ("pyro_dgm.cli", "pyro_dgm.__main__", "pyro_dgm"),
)
# (importer, imported) pairs let through, each with its reason (none today).
EXEMPT: set[tuple[str, str]] = set()
SCRIPTS = {"pyro_dgm.__main__"}  # runs the command line when imported


def project_modules() -> dict[str, Path]:
    """Every module of the project: dotted name -> source file."""
    modules = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def imported_modules(name: str, path: Path) -> set[str]:
    """The project modules that the source of module ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:  # `from package import submodule` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES}


def layer_of(module: str) -> int:
    """The index in LAYERS of the entry that ``module`` is, or lies under."""
    for index, layer in enumerate(LAYERS):
        for top in layer:
            if module == top or (top != "pyro_dgm" and module.startswith(top + ".")):
                return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def exempt(importer: str, imported: str) -> bool:
    return any(importer == low and (imported == high or imported.startswith(high + "."))
               for low, high in EXEMPT)


IMPORTS = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_module_imports_a_layer_above_its_own():
    climbing = [f"{importer} (layer {layer_of(importer)}) imports {imported} "
                f"(layer {layer_of(imported)})"
                for importer, targets in IMPORTS.items() for imported in sorted(targets)
                if layer_of(imported) > layer_of(importer) and not exempt(importer, imported)]
    assert not climbing, "imports that climb a layer:\n" + "\n".join(climbing)


def test_the_rules_catch_a_climbing_import():
    """The checks above can fail: a made-up model module importing the zoo climbs a layer."""
    assert layer_of("pyro_dgm.zoo.vae") > layer_of("pyro_dgm.models.vae")
    assert layer_of("pyro_dgm.infer.trainer") > layer_of("pyro_dgm.data.core")
    assert not exempt("pyro_dgm.models.vae", "pyro_dgm.zoo")


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph ``edges`` as a list of nodes, or None (depth-first)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_imports_between_modules_form_no_cycle():
    edges = {importer: {t for t in targets if t != importer and not exempt(importer, t)}
             for importer, targets in IMPORTS.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_every_module_imports_on_its_own():
    """In one fresh interpreter, each module is imported with no project module loaded before
    it (the project's entries are dropped from ``sys.modules`` in between), so an import that
    only works after another module was loaded first fails here."""
    names = sorted(set(MODULES) - SCRIPTS)
    script = f"""
import importlib, sys
failures = []
for name in {names!r}:
    for loaded in [m for m in sys.modules if m == "pyro_dgm" or m.startswith("pyro_dgm.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failures.append(f"{{name}}: {{type(error).__name__}}: {{error}}")
print("\\n".join(failures))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", "modules that do not import on their own:\n" + result.stdout
