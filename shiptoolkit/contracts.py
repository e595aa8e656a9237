"""Components built with their plugin's name on every failure, and samplers held to their contract.

Why: a plugin's factory that raises, or a sampler that yields float images in 0..1, would
otherwise end in a numpy or albumentations message far from the cause, or train silently on
near-black input. Every error here names the component, its plugin and the rule it broke.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shiptoolkit.errors import PluginError, ShiptoolkitError
from shiptoolkit.plugins import get_registry

PAIRS_CHECKED = 2  # the first pairs of an epoch: enough to catch a wrong dtype, size or channel count


def build_component(kind: str, name: str, *args: Any, **params: Any) -> Any:
    """`get_registry(kind).create(name, ...)`, naming the component and its plugin when it raises."""
    registry = get_registry(kind)
    component = registry.get(name)
    try:
        return registry.create(name, *args, **params)
    except ShiptoolkitError:
        raise
    except Exception as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in registry.reserved and k != "index")
        raise PluginError(f"{kind} {name!r} (plugin {component.plugin!r}) failed to build with "
                          f"{shown or 'no parameters'}: {type(exc).__name__}: {exc}") from exc


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
