"""Components built with their plugin's name on every failure, and samplers held to their contract.

Why: a plugin's factory that raises, or a sampler that yields float images in 0..1, would
otherwise end in a numpy or albumentations message far from the cause, or train silently on
near-black input. Every error here names the component, its plugin and the rule it broke.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.errors import ArgumentError, ConfigError, PluginError, ShiptoolkitError
from shiptoolkit.plugins import KINDS, get_registry

PAIRS_CHECKED = 2  # the first pairs of an epoch: enough to catch a wrong dtype, size or channel count


def build_component(kind: str, name: str, *args: Any, **params: Any) -> Any:
    """`get_registry(kind).create(name, ...)`, naming the component and its plugin when it raises or
    returns something its kind's contract does not allow (`EXPECTED`); samplers are checked by
    `check_sampler`, callbacks by `build_callbacks`."""
    registry = get_registry(kind)
    component = registry.get(name)
    _check_input_shape(kind, name, params)
    try:
        built = registry.create(name, *args, **params)
    except ShiptoolkitError:
        raise
    except Exception as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in registry.reserved and k != "index")
        raise PluginError(f"{kind} {name!r} (plugin {component.plugin!r}) failed to build with "
                          f"{shown or 'no parameters'}: {type(exc).__name__}: {exc}") from exc
    problem = _result_problem(kind, built, params)
    if problem:
        raise PluginError(f"{kind} {name!r} (plugin {component.plugin!r}) returned {problem}. Expected "
                          f"{EXPECTED[kind]} (see the {KINDS[kind][0]} hook).")
    return built


# What each kind's factory returns (the hooks' contracts, `shiptoolkit.plugins.hookspecs`).
EXPECTED = {
    "loss": "a keras.losses.Loss or a function (y_true, y_pred) -> scalar",
    "backbone": "a keras.Model mapping (None, H, W, 3) images to (None, H, W, classes) sigmoid masks",
    "classifier": "a keras.Model mapping (None, H, W, 3) images to (None, 1): one ship probability per image",
    "encoder": "a shiptoolkit.models.encoders.Encoder (inputs, output, skips deepest first, load_and_freeze)",
    "metric": 'an object with `usage` (a set of "train" / "evaluate"), keras_metric() for "train" and '
              'evaluator() for "evaluate"',
}


def _check_input_shape(kind: str, name: str, params: dict[str, Any]) -> None:
    shape = params.get("input_shape", ())
    if kind not in ("backbone", "classifier") or "input_shape" not in params:
        return
    sides_ok = isinstance(shape, (tuple, list)) and len(shape) == 3 and all(
        s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in shape)
    if not sides_ok:
        raise ArgumentError(f"{kind} {name!r}: input_shape must be (height, width, 3), e.g. (256, 256, 3) (None "
                            f"for a side left to the images). Received: input_shape={shape!r}")


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _result_problem(kind: str, built: Any, params: dict[str, Any]) -> str | None:
    """Why `built` breaks its kind's contract (the start of a sentence), or None."""
    if kind == "loss":
        return None if callable(built) else f"{_shown(built)}, which is not callable"
    if kind == "metric":
        return _metric_problem(built)
    if kind == "encoder":  # duck-typed: the Encoder class lives in a higher layer (models)
        missing = [a for a in ("inputs", "output", "skips", "load_and_freeze") if not hasattr(built, a)]
        return f"{_shown(built)}, which has no {', '.join(missing)}" if missing else None
    if kind not in ("backbone", "classifier"):
        return None
    import keras  # only backbones and classifiers get here: Keras is loaded for them anyway

    if not isinstance(built, keras.Model):
        return f"{_shown(built)}, not a keras.Model"
    try:
        inputs, outputs = tuple(built.input_shape), tuple(built.output_shape)
    except (AttributeError, ValueError, RuntimeError, TypeError):  # unbuilt or with several inputs/outputs
        return None
    if kind == "classifier":
        return None if outputs == (None, 1) else f"a keras.Model with output shape {outputs}, not (None, 1)"
    classes = params.get("classes", 1)
    sides = list(zip(inputs[1:3], outputs[1:3], strict=False))  # None: a side left to the images
    if len(outputs) != 4 or any(None not in side and side[0] != side[1] for side in sides):
        return f"a keras.Model mapping {inputs} to {outputs}, not to (None, H, W, {classes}) masks of the input's size"
    if outputs[-1] is not None and outputs[-1] != classes:
        return f"a keras.Model with {outputs[-1]} output channel(s), not classes={classes}"
    return None


def _metric_problem(built: Any) -> str | None:
    usage = getattr(built, "usage", None)
    if not isinstance(usage, (set, frozenset, list, tuple)) or not usage or not set(usage) <= {"train", "evaluate"}:
        return f"{_shown(built)}, whose usage is {usage!r}"
    for needed, method in (("train", "keras_metric"), ("evaluate", "evaluator")):
        if needed in usage and not callable(getattr(built, method, None)):
            return f"{_shown(built)}, whose usage names {needed!r} but which has no {method}()"
    return None


def build_callbacks(config: Any, run_dir: str | Path, stage: str) -> list:
    """The Keras callbacks `train.callbacks` names, built by their plugins' factories for one fit.

    Every name is checked first (an unknown one lists the registered callbacks). A factory gets
    `(config, run_dir)`, and `stage=` ("segmenter" or "classifier") when it accepts it; one that
    returns None is left out. A factory that raises, or returns something that is not a
    `keras.callbacks.Callback`, is a `PluginError` naming the callback and its plugin.
    """
    import keras  # only training calls this: the modules that import contracts stay light

    registry, names = get_registry("callback"), list(config.settings.train.callbacks)
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise ConfigError(f"train.callbacks names {', '.join(map(repr, doubled))} more than once. "
                          f"Received: train.callbacks={names!r}")
    components = [registry.get(name) for name in names]  # UnknownComponentError lists the known ones
    built = []
    for component in components:
        registry.check_params(component.name, {})  # a factory must need nothing but what shiptoolkit passes
        where = f"callback {component.name!r} (plugin {component.plugin!r})"
        try:
            takes_stage = _accepts(component.factory, "stage")
            callback = (component.factory(config, Path(run_dir), stage=stage) if takes_stage
                        else component.factory(config, Path(run_dir)))
        except ShiptoolkitError:
            raise
        except Exception as exc:
            raise PluginError(f"{where} failed to build for the {stage}: {type(exc).__name__}: {exc}") from exc
        if callback is None:  # the factory opted out (e.g. only for the segmenter)
            continue
        if not isinstance(callback, keras.callbacks.Callback):
            raise PluginError(f"{where} returned {type(callback).__name__}, not a keras.callbacks.Callback "
                              "(or None to leave this fit out).")
        built.append(callback)
    return built


def _accepts(factory: Any, name: str) -> bool:
    """Whether `factory` takes a keyword argument `name` (by name or through **kwargs)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (some builtins): pass the documented two only
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def check_sampler(sampler: Any, name: str, seams: bool = False) -> None:
    """Check the first pairs against the sampler contract: image (H, W, 3) uint8 RGB 0..255,
    mask (H, W) uint8 of 0/1 (2 on seams with train.seam_channel), (H, W) = `output_shape`."""
    plugin = get_registry("sampler").get(name).plugin
    where = f"sampler {name!r} (plugin {plugin!r})"
    try:
        height, width = sampler.output_shape
    except Exception as exc:
        raise PluginError(f"{where}: output_shape failed: {type(exc).__name__}: {exc}") from exc
    for i in range(min(PAIRS_CHECKED, len(sampler))):
        try:
            pair = sampler.pair(i, 0)
        except ShiptoolkitError:
            raise
        except Exception as exc:
            raise PluginError(f"{where} raised on pair {i}: {type(exc).__name__}: {exc}") from exc
        problem = _pair_problem(pair, (height, width), seams)
        if problem:
            raise PluginError(f"{where} broke the sampler contract on pair {i}: {problem}. A sampler yields "
                              f"(image, mask): image ({height}, {width}, 3) uint8 RGB in 0..255, mask ({height}, "
                              f"{width}) uint8 0/1 (see shiptoolkit.samplers.base.Sampler).")


def _pair_problem(pair: Any, shape: tuple[int, int], seams: bool) -> str | None:
    if not isinstance(pair, tuple) or len(pair) != 2:
        return f"it returned {type(pair).__name__}, not an (image, mask) tuple"
    image, mask = pair
    if not isinstance(image, np.ndarray) or not isinstance(mask, np.ndarray):
        return f"it returned ({type(image).__name__}, {type(mask).__name__}), not numpy arrays"
    if image.dtype != np.uint8:
        scale = f" with values {float(image.min()):.3g}..{float(image.max()):.3g}" if image.size else ""
        return f"the image is {image.dtype}{scale}, not uint8 0..255 (multiply 0..1 floats by 255 and cast)"
    if image.shape != (*shape, 3):
        return f"the image has shape {image.shape}, not {(*shape, 3)} (output_shape {shape}, RGB)"
    if mask.dtype != np.uint8:
        return f"the mask is {mask.dtype}, not uint8"
    if mask.shape != shape:
        return f"the mask has shape {mask.shape}, not {shape}"
    allowed = {0, 1, 2} if seams else {0, 1}
    values = set(np.unique(mask).tolist())
    if not values <= allowed:
        return f"the mask holds values {sorted(values - allowed)[:5]}, not only {sorted(allowed)}"
    return None
