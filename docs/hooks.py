"""MkDocs hook: replace placeholders with references generated from the code at build time."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: benchmarks/package_map.py

from benchmarks import package_map  # noqa: E402
from shiptoolkit.cli import reference  # noqa: E402

PLACEHOLDERS = {
    "<!-- generated:components -->": reference.components_markdown,
    "<!-- generated:config -->": reference.config_markdown,
    "<!-- generated:cli -->": reference.cli_markdown,
    "<!-- generated:modules -->": package_map.modules_markdown,
    "<!-- generated:moved -->": reference.moved_markdown,
}


def on_page_markdown(markdown: str, **kwargs) -> str:
    for marker, generate in PLACEHOLDERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
