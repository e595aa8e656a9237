"""The generic `Registry` used by every component kind (samplers, backbones, losses, metrics).

After timm: `list(pattern)` with fnmatch wildcards, `get(name)`, `create(name, **params)`.
A component is any callable (function or class); its parameters, types, defaults and their
documentation are read from its signature and its Google-style docstring, so the CLI's
`components` command and the docs' component reference never drift from the code.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shiptoolkit.errors import ConfigError, DuplicateComponentError, UnknownComponentError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Param:
    """One parameter of a component, as read from its signature and docstring."""

    name: str
    type: str
    default: Any
    required: bool
    doc: str = ""

    def to_dict(self) -> dict[str, Any]:
        default = None if self.required else self.default
        return {"name": self.name, "type": self.type, "default": default,
                "required": self.required, "doc": self.doc}


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
        out = []
        for p in inspect.signature(target).parameters.values():
            if p.name in ("self", *self.reserved) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            required = p.default is inspect.Parameter.empty
            out.append(Param(p.name, _annotation_str(p.annotation), None if required else p.default,
                             required, docs.get(p.name, "")))
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
        """Raise `ConfigError` for unknown or missing parameters of component `name`."""
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
        return (f"Unknown {self.kind} {name!r}.{tip} Known {self.kind}s: "
                f"{', '.join(known) or '(none registered)'}. "
                "Plugins add more: see `shiptoolkit plugins`.")


def _annotation_str(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


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
