"""JSON files the toolkit wrote, read back with checks: a damaged one is a clear error, never a traceback.

postprocess.json, gate.json, shiptoolkit_export.json, *.shard.json and a cross-validation's fold
metrics.json and timings.json are read through `read_json`,
which names the file, the key, the value found and what to do (re-tune, delete the file,
export again...). Each reader says which keys it uses and what each must hold (`JSON_KINDS`);
`tests/test_hostile_data.py` feeds them any JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shiptoolkit.errors import ShiptoolkitError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What a key of a JSON file the toolkit wrote may hold: kind -> (test, how a message says it).
JSON_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "number": (_is_number, "a number"),
    "fraction": (lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "nonnegative": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "count": (lambda v: _is_whole(v) and v >= 0, "a whole number >= 0"),
    "size": (lambda v: _is_whole(v) and v >= 1, "a whole number >= 1"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
    "objects": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v), "a list of JSON objects"),
    "shape": (lambda v: isinstance(v, list) and all(x is None or (_is_whole(x) and x >= 1) for x in v),
              "a list of sizes (whole numbers >= 1, or null)"),
}


def read_json(path: str | Path, keys: dict[str, str], fix: str,
              error: type[ShiptoolkitError] = ShiptoolkitError) -> dict:
    """The JSON object a file of the toolkit holds, its `keys` checked before anything uses them.

    `keys` maps a key ("tuned_on.images" for a nested one; ending in "?" when it may be absent)
    to its kind: one of `JSON_KINDS`, with "|null" when null is allowed too. Other keys pass.

    Raises:
        `error`: the file is unreadable, not JSON, not an object, or a key is missing or of the
            wrong kind; the message names the file, the key and its value, and ends with `fix`.
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path} is damaged: it cannot be read ({exc}). {fix}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, nested too deep
        raise error(f"{path} is damaged: it is not valid JSON ({type(exc).__name__}: {str(exc)[:80]}). "
                    f"{fix}") from None
    if not isinstance(info, dict):
        raise error(f"{path} is damaged: it holds {_shown(info)}, not a JSON object. {fix}")
    check_json(path, info, keys, fix, error)
    return info


def check_json(path: str | Path, info: dict, keys: dict[str, str], fix: str,
               error: type[ShiptoolkitError] = ShiptoolkitError) -> None:
    """`read_json`'s check of `keys` in an object read from `path` (e.g. the keys of a part it holds)."""
    for key, kind in keys.items():
        problem = _key_problem(info, key.removesuffix("?"), kind, optional=key.endswith("?"))
        if problem:
            raise error(f"{path} is damaged: {problem}. {fix}")


def _key_problem(info: dict, key: str, kind: str, optional: bool) -> str | None:
    value: Any = info
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(value, dict):
            return f"its {'.'.join(parts[:depth])!r} is {_shown(value)}, not a JSON object"
        if part not in value:
            return None if optional else f"the key {'.'.join(parts[:depth + 1])!r} is missing"
        value = value[part]
    nullable = kind.endswith("|null")
    test, wanted = JSON_KINDS[kind.removesuffix("|null")]
    if (value is None and nullable) or test(value):
        return None
    return f"its {key!r} is {_shown(value)}, not {wanted}{' or null' if nullable else ''}"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
