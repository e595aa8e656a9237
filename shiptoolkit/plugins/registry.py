"""The generic `Registry` used by every component kind (samplers, backbones, losses, metrics).

After timm: `list(pattern)` with fnmatch wildcards, `get(name)`, `create(name, **params)`.
A component is any callable (function or class); its parameters, types, defaults and their
documentation are read from its signature and its Google-style docstring, so the CLI's
`components` command and the docs' component reference never drift from the code.

Parameters are checked before a component is built, so `run --dry-run` catches them: by name,
by type (simple annotations such as `int`, `float | None`, `tuple[int, ...]`) and by range
(`@param_ranges`, which plugin authors can put on their own factories too).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import numbers
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shiptoolkit.errors import ConfigError, DuplicateComponentError, UnknownComponentError
from shiptoolkit.plugins.docstrings import parse_args_section

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RANGES_ATTR = "__shiptoolkit_param_ranges__"


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter accepts: `low`..`high` (None = unbounded), bounds inclusive
    unless `low_open` / `high_open`; `also` lists values accepted outside it (e.g. 0 = "off").

    Example:
        >>> str(Range(0.0, 1.0, high_open=True)), str(Range(8, None, also=(0,))), 0.5 in Range(0, 1)
        ('in [0.0, 1.0)', '0 or >= 8', True)
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[Any, ...] = ()

    def __contains__(self, value: Any) -> bool:
        if value in self.also:
            return True
        if value != value:  # NaN (TOML's `nan`) compares false to every bound: in no range
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {self.low}"
        elif self.high is not None:
            text = f"{'<' if self.high_open else '<='} {self.high}"
        else:
            text = "any number"
        return " or ".join([*map(repr, self.also), text])


def param_ranges(**ranges: tuple[float | None, float | None] | Range) -> Callable[[Any], Any]:
    """Decorator: the allowed range of a component's numeric parameters, checked at config load.

    `(low, high)` is inclusive at both ends, None = unbounded; a `Range` gives open bounds or
    extra allowed values. For a list/tuple parameter the range applies to every item. A
    decorated class's ranges are inherited by its subclasses (and extended by their own).

    Example:
        >>> @param_ranges(depth=(1, 8), dropout=Range(0.0, 1.0, high_open=True))
        ... def my_net(depth: int = 4, dropout: float = 0.0):
        ...     "A net."
        >>> nets = Registry("backbone")
        >>> nets.register("my_net", my_net)
        >>> nets.check_params("my_net", {"depth": 9})
        Traceback (most recent call last):
        shiptoolkit.errors.ConfigError: backbone 'my_net': depth must be in [1, 8], got 9.
    """
    parsed: dict[str, Range] = {}
    for key, value in ranges.items():
        if not isinstance(value, Range) and not (isinstance(value, tuple) and len(value) == 2):
            raise TypeError(f"param_ranges: {key} must be (low, high) or a Range. Received: {key}={value!r}")
        parsed[key] = value if isinstance(value, Range) else Range(*value)

    def attach(factory: Any) -> Any:
        target = factory.__init__ if inspect.isclass(factory) else factory
        names = inspect.signature(target).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in names.values()):
            unknown = sorted(set(parsed) - set(names))
            if unknown:  # a typo here would silently check nothing
                raise TypeError(f"param_ranges: {getattr(factory, '__qualname__', factory)!r} has no "
                                f"parameter(s) {', '.join(unknown)}. Its parameters: {', '.join(names)}.")
        setattr(factory, RANGES_ATTR, {**getattr(factory, RANGES_ATTR, {}), **parsed})
        return factory

    return attach


@dataclass(frozen=True)
class Param:
    """One parameter of a component, as read from its signature, docstring and `@param_ranges`."""

    name: str
    type: str
    default: Any
    required: bool
    doc: str = ""
    range: Range | None = None

    def to_dict(self) -> dict[str, Any]:
        default = None if self.required else self.default
        return {"name": self.name, "type": self.type, "default": default, "required": self.required,
                "doc": self.doc, "range": str(self.range) if self.range else None}


@dataclass(frozen=True)
class Component:
    """A registered component: its name, the callable that builds it, and where it came from."""

    name: str
    kind: str
    factory: Callable[..., Any]
    plugin: str = "unknown"
    # Parameters the framework passes itself (e.g. a sampler's `index`): not user-configurable.
    reserved: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        """The first line of the component's docstring."""
        doc = inspect.getdoc(self.factory) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def params(self) -> list[Param]:
        """User-configurable parameters with types, defaults and docs."""
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        docs = parse_args_section(inspect.getdoc(self.factory) or "")
        if inspect.isclass(self.factory):
            docs = {**parse_args_section(inspect.getdoc(target) or ""), **docs}
        ranges = getattr(self.factory, RANGES_ATTR, {})
        out = []
        for p in inspect.signature(target).parameters.values():
            if p.name in ("self", *self.reserved) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            required = p.default is inspect.Parameter.empty
            out.append(Param(p.name, _annotation_str(p.annotation), None if required else p.default,
                             required, docs.get(p.name, ""), ranges.get(p.name)))
        return out

    def accepts_any_keyword(self) -> bool:
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "summary": self.summary,
                "plugin": self.plugin, "params": [p.to_dict() for p in self.params]}


class Registry:
    """Named components of one kind.

    Example:
        >>> losses = Registry("loss")
        >>> @losses.register("l1")
        ... def l1(y_true, y_pred):
        ...     '''Mean absolute error.'''
        >>> losses.list()[0].summary
        'Mean absolute error.'
    """

    def __init__(self, kind: str, reserved: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.reserved = reserved
        self._items: dict[str, Component] = {}

    def register(self, name: str, factory: Callable[..., Any] | None = None, *,
                 override: bool = False, plugin: str = "unknown") -> Any:
        """Register `factory` under `name`; usable as `register(name, fn)` or `@register(name)`.

        A name that already exists raises `DuplicateComponentError` unless `override=True`.
        """
        if factory is None:
            return lambda fn: self.register(name, fn, override=override, plugin=plugin) or fn
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"{self.kind} names must be lowercase snake_case identifiers "
                             f"(letters, digits, '_'). Received: name={name!r}")
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} must be callable. Received: {factory!r}")
        if name in self._items and not override:
            existing = self._items[name].plugin
            raise DuplicateComponentError(
                f"{self.kind} {name!r} from plugin {plugin!r} is already registered by plugin "
                f"{existing!r}. Pick another name, or register with override=True to replace it.")
        self._items[name] = Component(name, self.kind, factory, plugin, self.reserved)
        return None

    def get(self, name: str) -> Component:
        """The component called `name`; an unknown name lists the known ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownComponentError(self._unknown_message(name)) from None

    def create(self, name: str, /, *args: Any, **params: Any) -> Any:
        """Build component `name` with `params`, checking parameter names first."""
        component = self.get(name)
        self.check_params(name, {k: v for k, v in params.items() if k not in self.reserved})
        return component.factory(*args, **params)

    def check_params(self, name: str, params: dict[str, Any]) -> None:
        """Raise `ConfigError` for unknown, missing, mistyped or out-of-range parameters of `name`."""
        component = self.get(name)
        known = {p.name: p for p in component.params}
        if not component.accepts_any_keyword():
            for key in params:
                if key in self.reserved:
                    raise ConfigError(f"{self.kind} parameter {key!r} is set by shiptoolkit, not in the config.")
                if key not in known:
                    hint = difflib.get_close_matches(key, known, n=1)
                    tip = f" Did you mean {hint[0]!r}?" if hint else ""
                    raise ConfigError(
                        f"{self.kind} {name!r} has no parameter {key!r}.{tip} "
                        f"Its parameters: {', '.join(known) or '(none)'}.")
        missing = [p.name for p in known.values() if p.required and p.name not in params]
        if missing:
            raise ConfigError(f"{self.kind} {name!r} needs parameter(s): {', '.join(missing)}.")
        for key, value in params.items():
            problem = _param_problem(known[key], value) if key in known else None
            if problem:
                raise ConfigError(f"{self.kind} {name!r}: {problem}")

    def list(self, pattern: str = "*") -> list[Component]:
        """Components whose name matches the fnmatch `pattern`, sorted by name."""
        return [self._items[n] for n in sorted(self._items) if fnmatch.fnmatch(n, pattern)]

    @property
    def plural(self) -> str:
        return self.kind + ("es" if self.kind.endswith("s") else "s")

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Component]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)

    def _unknown_message(self, name: object) -> str:
        known = self.names()
        hint = difflib.get_close_matches(str(name), known, n=1)
        tip = f" Did you mean {hint[0]!r}?" if hint else ""
        return (f"Unknown {self.kind} {name!r}.{tip} Known {self.plural}: "
                f"{', '.join(known) or '(none registered)'}. "
                "Plugins add more: see `shiptoolkit plugins`.")


def _annotation_str(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation
    if getattr(annotation, "__args__", None):  # tuple[int, ...], int | None: a generic's __name__ drops its args
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


# Annotations checked against values; a list stands for a tuple too (TOML has no tuples).
_SIMPLE_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "tuple": lambda v: isinstance(v, (tuple, list)),
    "list": lambda v: isinstance(v, (list, tuple)),
    "dict": lambda v: isinstance(v, Mapping),
    "None": lambda v: v is None,
}


def _param_problem(param: Param, value: Any) -> str | None:
    """Why `value` does not fit the parameter's annotation or range; None if it fits (or can't tell)."""
    if _fits(param.type, value) is False:
        return f"{param.name} must be of type {param.type}, got {type(value).__name__} {value!r}."
    if param.range is None:
        return None
    many = isinstance(value, (list, tuple))
    for item in value if many else [value]:
        if isinstance(item, numbers.Real) and not isinstance(item, bool) and item not in param.range:
            return f"{'every item of ' if many else ''}{param.name} must be {param.range}, got {value!r}."
    return None


def _fits(annotation: str, value: Any) -> bool | None:
    """Whether `value` fits an annotation such as "int", "float | None" or "tuple[int, ...]";
    None when the annotation is not of these simple forms (then nothing is checked)."""
    text = annotation.strip()
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    if optional:
        text = f"{optional.group(1)} | None"
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):  # split on top-level "|" only: "tuple[int | str, ...]" is one part
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if parts:
        results = [_fits(part, value) for part in [*parts, text[start:]]]
        return None if None in results else any(results)
    match = re.fullmatch(r"(\w+)(?:\[(.*)\])?", text)
    if not match or match.group(1) not in _SIMPLE_TYPES:
        return None
    base, args = match.groups()
    if not _SIMPLE_TYPES[base](value):
        return False
    item = re.fullmatch(r"(\w+)(?:, \.\.\.)?", args or "")
    if base in ("tuple", "list") and item and item.group(1) in _SIMPLE_TYPES:  # tuple[int, ...], list[str]
        return all(_SIMPLE_TYPES[item.group(1)](v) for v in value)
    return True
