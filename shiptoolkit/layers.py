"""The module map: which layer each module sits in, and what it may import.

A module imports only modules of its own layer or of layers below it; nothing imports upward,
and no two modules import each other (directly or around a circle). `tests/test_structure.py`
holds the code to this map; `docs/design.md` shows it.

Imports inside functions are kept only for modules in `LAZY` (they import Keras/TensorFlow at
their top, and `import shiptoolkit` or `shiptoolkit --help` must not pay for that).
"""

from __future__ import annotations

import ast
from pathlib import Path

# Lowest first. Each entry: the layer's name, its one job, its modules (package-relative names).
LAYERS: list[tuple[str, str, tuple[str, ...]]] = [
    ("base", "exceptions, the config schema, hook specifications, pure helpers", (
        "errors", "schema", "hookspecs", "layers", "docstrings", "data.rle", "instances", "plots", "keras_metrics",
        "cluster")),
    ("core", "registries, validated config and typed settings, plugins, the run directory", (
        "registry", "config", "settings", "plugins", "rundir", "submission", "sharding", "merging", "augment",
        "examples_index")),
    ("components", "data, models, losses, metrics: what plugins register and runs build", (
        "data", "data.airbus", "data.split", "data.tables", "data.synth", "data.groups", "data.hash_cache",
        "data.check", "data.source",
        "backbones", "backbones.encoders", "backbones.unet", "backbones.resnet_unet", "backbones.legacy_h5",
        "backbones.pretrained",
        "classifiers", "losses", "metrics", "competition", "scoring", "model_io", "model_checks", "replicas",
        "samplers", "samplers.base", "samplers.patches", "samplers.mixed", "samplers.ship_patches",
        "samplers.full_images", "contracts", "pipeline", "multi_worker")),
    ("prediction", "the gate's math and whole-image prediction, post-processing", (
        "gate", "prediction")),
    ("choices", "what is chosen on validation: post-processing tuning, checkpoint callbacks", (
        "tuning", "callbacks")),
    ("stages", "train (gate classifier, segmenter, tuning), evaluate", (
        "gate_training", "training", "evaluation", "export")),
    ("runs", "one run: the stages in order in one run directory; the public API", (
        "runner", "__init__")),
    ("interfaces", "the command line, and the docs' reference generated from it and the registries", (
        "cli", "cli.interrupts", "cli.run_plugins", "cli.components", "cli.data", "cli.evaluate",
        "cli.export", "cli.plugins_cmd", "cli.predict", "cli.run", "cli.score", "cli.submission", "cli.synth",
        "cli.train", "cli.workers", "__main__", "reference")),
]

# Modules that import Keras/TensorFlow at their top: others import them inside functions, so
# that importing the package, the CLI and the config stays fast.
LAZY = {f"shiptoolkit.{m}" for m in (
    "backbones.encoders", "backbones.resnet_unet", "backbones.unet", "callbacks", "classifiers", "gate_training",
    "keras_metrics", "losses", "multi_worker", "pipeline", "runner", "training")}

LAYER_OF = {f"shiptoolkit.{m}" if m != "__init__" else "shiptoolkit": i
            for i, (_, _, modules) in enumerate(LAYERS) for m in modules}


def module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
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
    a subpackage's `__init__` importing its own modules do not count as circles.
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
    """'a -> b' for every import of a module in a higher layer (and modules missing from the map)."""
    out = [f"{m}: not in shiptoolkit.layers.LAYERS" for m in graph if m not in LAYER_OF]
    for module, targets in graph.items():
        for target in targets:
            if module in LAYER_OF and target in LAYER_OF and LAYER_OF[target] > LAYER_OF[module]:
                if module == "shiptoolkit" or target.startswith(module + "."):
                    continue  # the public API and subpackage __init__ files gather what is below them
                out.append(f"{module} -> {target}")
    return sorted(out)
