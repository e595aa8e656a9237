"""Google-style docstrings read for their `Args:` section: where component parameters are documented."""

from __future__ import annotations

import re


def parse_args_section(doc: str) -> dict[str, str]:
    """Parse the `Args:` section of a Google-style docstring into {name: description}."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:"))
    except StopIteration:
        return out
    indent = None
    current = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        this_indent = len(line) - len(line.lstrip())
        if indent is None:
            indent = this_indent
        if this_indent < indent:
            break
        match = re.match(r"\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)", line)
        if this_indent == indent and match:
            current = match.group(1).lstrip("*")
            out[current] = match.group(3).strip()
        elif current is not None:
            out[current] = (out[current] + " " + line.strip()).strip()
    return out
