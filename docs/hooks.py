"""MkDocs hook: replace placeholders with references generated from the code at build time."""

from __future__ import annotations

from shiptoolkit import reference

PLACEHOLDERS = {
    "<!-- generated:components -->": reference.components_markdown,
    "<!-- generated:config -->": reference.config_markdown,
    "<!-- generated:cli -->": reference.cli_markdown,
    "<!-- generated:modules -->": reference.modules_markdown,
}


def on_page_markdown(markdown: str, **kwargs) -> str:
    for marker, generate in PLACEHOLDERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
