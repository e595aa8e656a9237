"""Old import paths of modules that moved into the layer folders, kept working for one release.

Up to 0.1 the package was flat (`shiptoolkit.gate`, `shiptoolkit.losses`, ...). Plugin authors may
import those paths, so each still imports, as the very module at its new home, with a
`DeprecationWarning` naming the new path. `shiptoolkit.evaluation` was split in two: its old
path gives a module that finds each name in either half. Removed in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from pathlib import Path

REMOVED_IN = "0.3"

# old name -> new home(s), both relative to `shiptoolkit.`
MOVED: dict[str, tuple[str, ...]] = {
    "augment": ("training.augment",),
    "backbones": ("models",),
    "backbones.encoders": ("models.encoders",),
    "backbones.legacy_h5": ("models.legacy_h5",),
    "backbones.pretrained": ("models.pretrained",),
    "backbones.resnet_unet": ("models.resnet_unet",),
    "backbones.unet": ("models.unet",),
    "callbacks": ("training.callbacks",),
    "classifiers": ("models.classifiers",),
    "cluster": ("training.cluster",),
    "competition": ("scoring.competition",),
    "contracts": ("plugins.contracts",),
    "docstrings": ("plugins.docstrings",),
    "evaluation": ("inference.stage", "scoring.evaluate"),
    "examples_index": ("config.examples_index",),
    "export": ("inference.export", "inference.exported"),
    "gate": ("inference.gate",),
    "gate_training": ("training.gate",),
    "hookspecs": ("plugins.hookspecs",),
    "instances": ("data.instances",),
    "keras_metrics": ("models.keras_metrics",),
    "losses": ("models.losses",),
    "merging": ("inference.merging",),
    "metrics": ("scoring.metrics",),
    "model_checks": ("models.checks",),
    "model_io": ("models.saving",),
    "multi_worker": ("training.multi_worker",),
    "pipeline": ("training.pipeline",),
    "prediction": ("inference.prediction",),
    "reference": ("cli.reference",),
    "registry": ("plugins.registry",),
    "replicas": ("inference.replicas",),
    "schema": ("config.schema",),
    "settings": ("config.settings",),
    "sharding": ("inference.sharding",),
    "submission": ("inference.submission",),
    "tuning": ("training.tuning",),
}


def _importer_stacklevel() -> int:
    """The stacklevel of the frame whose import statement named the old path.

    Frames of this module, `importlib.import_module` and the package's `__getattr__` are counted and
    passed; importlib's frozen frames are passed without counting (`warnings.warn` does not count them).
    """
    passed = {__file__, importlib.__file__, str(Path(__file__).with_name("__init__.py"))}
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if name in passed:
            level += 1
        elif not name.startswith("<frozen importlib"):
            break
        frame = frame.f_back
    return level


def _warn(old: str, new: tuple[str, ...]) -> None:
    homes = " and ".join(f"shiptoolkit.{n}" for n in new)
    warnings.warn(f"shiptoolkit.{old} moved to {homes}: import it from there "
                  f"(the old path is removed in shiptoolkit {REMOVED_IN}).", DeprecationWarning,
                  stacklevel=_importer_stacklevel())


def _split_module(old: str, homes: list[types.ModuleType]) -> types.ModuleType:
    """A module that finds each name in the first of `homes` that has it (for a module split in two)."""
    module = types.ModuleType(f"shiptoolkit.{old}", f"Moved: see {', '.join(h.__name__ for h in homes)}.")

    def __getattr__(name: str):
        for home in homes:
            if hasattr(home, name):
                return getattr(home, name)
        raise AttributeError(f"module 'shiptoolkit.{old}' has no attribute {name!r}")

    module.__getattr__ = __getattr__
    return module


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, old: str):
        self.old = old
        self.spec = None

    def create_module(self, spec):
        new = MOVED[self.old]
        _warn(self.old, new)
        homes = [importlib.import_module(f"shiptoolkit.{n}") for n in new]
        module = homes[0] if len(homes) == 1 else _split_module(self.old, homes)
        self.spec = getattr(module, "__spec__", None)
        return module

    def exec_module(self, module):
        if self.spec is not None:
            module.__spec__ = self.spec  # the import system set the old name's spec on the real module


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds `shiptoolkit.<old>` for every old name in `MOVED`; every other name is left to the usual finders."""

    def find_spec(self, fullname, path=None, target=None):
        old = fullname.removeprefix("shiptoolkit.")
        if old == fullname or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedLoader(old))


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())


def moved_attribute(name: str):
    """`shiptoolkit.<old>` as an attribute of the package (`import shiptoolkit; shiptoolkit.gate`), or None."""
    if name not in MOVED:
        return None
    return importlib.import_module(f"shiptoolkit.{name}")
