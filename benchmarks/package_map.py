"""The package's floor plan, read from its folders: which layer each folder is, and what it may import.

Each top-level folder of `shiptoolkit/` (and each of its few top-level modules) is one layer; a
module imports only modules of its own folder or of folders below it in `LAYER_ORDER`, and no
two modules import each other (directly or around a circle). `tests/test_structure.py` holds
the code to this; `docs/design.md`'s module map is generated from the folders' docstrings here
(`modules_markdown`, called by the docs' build hook). Tooling for tests, docs and benchmarks:
it is not part of the installed package.

Imports inside functions are kept only for modules in `LAZY` (they import Keras/TensorFlow at
their top, and `import shiptoolkit` or `shiptoolkit --help` must not pay for that).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "shiptoolkit"

# Lowest first: a folder (or top-level module) imports only from itself and from those before it.
LAYER_ORDER: tuple[str, ...] = (
    "errors", "jsonfiles", "runstate", "rundir", "plots", "moved",  # base modules: exceptions, checked JSON
    # files, who works on a run, run-directory files, PNGs, old paths
    "plugins", "config", "data", "samplers", "models", "inference", "scoring", "training",
    "scenes",  # whole georeferenced scenes: windows in, ship vectors out
    "runner",  # one run: the stages in order
    "ensembles",  # several runs' models averaged: predict and evaluate with them
    "cv",  # k-fold cross-validation: one run per fold
    "cli", "__main__",
)
RANK = {name: i for i, name in enumerate(LAYER_ORDER)}

# Modules that import Keras/TensorFlow at their top: others import them inside functions, so
# that importing the package, the CLI and the config stays fast.
LAZY = {f"shiptoolkit.{m}" for m in (
    "models.applications", "models.app_encoders",  # keras.applications encoders
    "models.encoders", "models.architectures", "models.decoders", "models.resnet_unet", "models.unet",
    "models.classifiers", "models.keras_metrics",
    "models.losses", "training.callbacks", "training.gate", "training.multi_worker", "training.pipeline",
    "training.stage", "training.model_setup", "runner", "cv")}


def module_name(path: Path, package_dir: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    """The layer unit of a module: its top-level folder or top-level module (None for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def import_graph(package_dir: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the shiptoolkit modules it imports, at its top or inside functions}."""
    modules = {module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shiptoolkit"):
                for alias in node.names:  # `from shiptoolkit.cli import cli` vs `from shiptoolkit import errors`
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("shiptoolkit"))
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a circle (Tarjan's algorithm).

    The package itself (`shiptoolkit/__init__.py`, the public API that re-exports from below) and
    a folder's `__init__` importing its own modules do not count as circles.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def edges(node: str) -> set[str]:
        return {t for t in graph.get(node, ()) if t != "shiptoolkit" and not t.startswith(node + ".")}

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges(node):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a module in a higher folder (and modules outside the layer order)."""
    out = [f"{m}: its folder {unit_of(m)!r} is not in LAYER_ORDER" for m in graph
           if m != "shiptoolkit" and unit_of(m) not in RANK]
    for module, targets in graph.items():
        if module == "shiptoolkit":
            continue  # the public API gathers what is below it
        for target in targets:
            source_unit, target_unit = unit_of(module), unit_of(target)
            if source_unit in RANK and target_unit in RANK and RANK[target_unit] > RANK[source_unit]:
                out.append(f"{module} -> {target}")
    return sorted(out)


def _docstring(path: Path) -> str:
    return (ast.get_docstring(ast.parse(path.read_text())) or "").strip() if path.is_file() else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def unit_path(unit: str, package_dir: Path = PACKAGE) -> Path:
    folder = package_dir / unit
    return folder / "__init__.py" if folder.is_dir() else package_dir / f"{unit}.py"


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.split("\n\n")[0].split())


def modules_markdown(package_dir: Path = PACKAGE) -> str:
    """The module map, highest layer first: each folder with its job (the first paragraph of its `__init__`
    docstring) and the lower layers it really imports, then its modules with the first paragraph of theirs."""
    graph = import_graph(package_dir)
    uses: dict[str, set[str]] = {}
    for module, targets in graph.items():
        unit = unit_of(module)
        if unit is not None:
            uses.setdefault(unit, set()).update(u for u in map(unit_of, targets) if u is not None and u != unit)
    out = ["| layer (folder) | module | its one job | imports from the layers below |", "|---|---|---|---|"]
    for unit in reversed(LAYER_ORDER):
        path = unit_path(unit, package_dir)
        below = ", ".join(f"`{u}`" for u in sorted(uses.get(unit, ()), key=RANK.get)) or "nothing of the package"
        name = f"`{unit}/`" if path.name == "__init__.py" else f"`{unit}`"
        out.append(f"| **{name}** | | {_cell(_first_paragraph(_docstring(path)))} | {below} |")
        if path.name != "__init__.py":
            continue
        for module in sorted(path.parent.glob("*.py")):
            if module.name == "__init__.py":
                continue
            lazy = " _(imports Keras at its top: others import it inside functions)_" \
                if f"shiptoolkit.{unit}.{module.stem}" in LAZY else ""
            out.append(f"| | `{unit}.{module.stem}` | {_cell(_first_paragraph(_docstring(module)))}{lazy} | |")
    return "\n".join(out) + "\n"
