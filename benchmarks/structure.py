"""Structure figures of the package, read from its source (nothing is run):

    largest_function_lines     lines of the longest function or method, and which
    raw_config_lookups         config values read by string keys (config["train"]["epochs"], or t["epochs"] after
                               t = config["train"]), outside config/loading.py (which validates the raw TOML)
    in_function_imports        imports of shiptoolkit modules inside functions (those not kept lazy for Keras)
    import_cycles              strongly connected groups of shiptoolkit modules in the import graph
    top_level_modules          modules beside the layer folders at the package's top (besides __init__/__main__)
    layer_violations           imports that run upward past the folders' layer order (benchmarks/package_map.py)

Usage: python benchmarks/structure.py [CHECKOUT]   (another checkout's package, e.g. an older commit's worktree)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import report  # noqa: E402
from benchmarks.package_map import LAZY, import_cycles, import_graph, layer_violations  # noqa: E402
from shiptoolkit.config.schema import SCHEMA  # noqa: E402

SECTIONS = set(SCHEMA)


def is_section(node: ast.AST) -> bool:
    """`<anything>["train"]`: a config section read by its string key."""
    return (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
            and node.slice.value in SECTIONS)


def raw_lookups(fn: ast.AST) -> int:
    """Reads of a config value by string keys: `config["train"]["epochs"]`, or `t["epochs"]` after
    `t = config["train"]` in the same function."""
    aliases = {target.id for node in ast.walk(fn) if isinstance(node, ast.Assign) and is_section(node.value)
               for target in node.targets if isinstance(target, ast.Name)}
    count = 0
    for node in ast.walk(fn):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            count += is_section(node.value) or (isinstance(node.value, ast.Name) and node.value.id in aliases)
    return count


def functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def main(root: Path = ROOT) -> None:
    longest, where, lookups, lazy_imports = 0, "", 0, 0
    for path in sorted((root / "shiptoolkit").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in functions(tree):
            lines = fn.end_lineno - fn.lineno + 1
            if lines > longest:
                longest, where = lines, f"{path.relative_to(root)}:{fn.name}"
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shiptoolkit"):
                    targets = {f"{node.module}.{a.name}" if node.module == "shiptoolkit" else node.module
                               for a in node.names}
                    lazy_imports += not targets <= LAZY
            outermost = not any(fn is inner for outer in functions(tree) if outer is not fn
                                for inner in ast.walk(outer))
            if outermost and path.relative_to(root).as_posix() != "shiptoolkit/config/loading.py":  # validates raw TOML
                lookups += raw_lookups(fn)
    graph = import_graph(root / "shiptoolkit")
    print(f"# largest function: {where}")
    report("largest_function_lines", longest, "lines")
    report("raw_config_lookups", lookups, "subscripts")
    report("in_function_imports", lazy_imports, "imports")
    report("import_cycles", len(import_cycles(graph)), "cycles")
    report("layer_violations", len(layer_violations(graph)), "imports")
    top = [p for p in (root / "shiptoolkit").glob("*.py") if p.stem not in ("__init__", "__main__")]
    report("top_level_modules", len(top), "modules")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)
