"""`augment.transforms` entries turned into albumentations transforms, with a clear error for each mistake.

Config loading builds every entry once (`check_transforms`), so `run --dry-run` refuses an unknown
transform name (suggesting the closest), an unknown parameter (which albumentations itself only
warns about, then ignores) or a bad value (`p = "often"`) exactly as the training run would;
`shiptoolkit.training.augment` builds its transforms with the same `build_transform`.
albumentations is imported only when a config names transforms other than the defaults.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from shiptoolkit.errors import ConfigError


def transform_classes() -> dict[str, type]:
    """albumentations' transform classes by name."""
    import albumentations as A

    return {name: obj for name, obj in vars(A).items()
            if isinstance(obj, type) and issubclass(obj, A.BasicTransform) and not name.startswith("_")}


def build_transform(spec: Any, position: int, classes: dict[str, type]) -> Any:
    """The transform a `{name = "...", <parameters>}` table describes.

    Raises:
        ConfigError: naming `augment.transforms[position]`, the transform and the bad name or value.
    """
    where = f"augment.transforms[{position}]"
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"{where} must be a table with a name, e.g. {{name = \"HorizontalFlip\", p = 0.5}}. "
                          f"Received: {spec!r}")
    params = dict(spec)
    name = params.pop("name")
    if not isinstance(name, str) or name not in classes:
        hint = difflib.get_close_matches(str(name), classes, n=1)
        tip = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{where}: unknown albumentations transform {name!r}.{tip} Names are albumentations' "
                          "class names (https://albumentations.ai/docs/), e.g. HorizontalFlip, RandomRotate90.")
    _check_parameter_names(classes[name], name, params, where)
    try:
        return classes[name](**params)
    except Exception as exc:  # albumentations validates with pydantic: re-raise with the position
        raise ConfigError(f"{where} ({name}): invalid parameters {params}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """pydantic's errors (albumentations raises a ValueError from them) on one line ("p: Input should be a
    valid number, ..."), other errors as they are."""
    for cause in (exc, exc.__cause__):
        try:
            errors = cause.errors()  # type: ignore[union-attr]
            return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in errors)
        except Exception:
            continue
    return f"{type(exc).__name__}: {exc}"


def _check_parameter_names(cls: type, name: str, params: dict[str, Any], where: str) -> None:
    try:
        signature = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # no signature to read: albumentations checks what it can
        return
    if any(p.kind == p.VAR_KEYWORD for p in signature.values()):
        return
    known = [p for p in signature if p != "self"]
    for key in params:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            tip = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{where} ({name}): unknown parameter {key!r}.{tip} Its parameters: "
                              f"{', '.join(known) or '(none)'}.")


def check_transforms(specs: list[Any], default: list[Any] | None = None) -> None:
    """Build every entry of `augment.transforms` once (a `ConfigError` names the first bad one).

    `default`: the schema's default list, known to build, so a config that keeps it loads without
    importing albumentations."""
    if default is not None and specs == default:
        return
    classes = transform_classes()
    for position, spec in enumerate(specs):
        build_transform(spec, position, classes)
