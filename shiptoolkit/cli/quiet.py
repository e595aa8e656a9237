"""TensorFlow's start-up lines kept off the command line, unless asked for (`--verbose`, SHIPTOOLKIT_VERBOSE=1).

Importing TensorFlow prints lines through absl before TF_CPP_MIN_LOG_LEVEL applies ("WARNING: All
log messages before absl::InitializeLog() is called are written to STDERR", "I0000 ... oneDNN
custom operations are on ..."), on every command that builds a model. So the CLI, when the user
has set nothing: sets TF_CPP_MIN_LOG_LEVEL=2 before TensorFlow loads, and lets the first
`import tensorflow` (wherever it happens) run with the process's stderr captured, writing back
every line but those info and warning start-up lines (errors pass). Only that one import is
touched; TensorFlow and its oneDNN speed-ups behave as ever.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

VERBOSE_ENV = "SHIPTOOLKIT_VERBOSE"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
# absl/glog info (I) and warning (W) lines, absl's notice about them, and a wrapped line of one.
STARTUP_LINE = re.compile(r"(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\]"
                          r"|To enable the following instructions: )")
_user_log_level = os.environ.get(LOG_LEVEL_ENV)  # as the user set it (None: not at all)


def verbose_requested() -> bool:
    """Whether TensorFlow's own logging is wanted: SHIPTOOLKIT_VERBOSE=1 (`--verbose` sets it), or a
    TF_CPP_MIN_LOG_LEVEL of 0 or 1 the user set themselves."""
    return (os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
            or (_user_log_level or "").strip() in ("0", "1"))


def install() -> None:
    """Quiet TensorFlow's start-up, unless `verbose_requested()` (called when the CLI is imported)."""
    if verbose_requested():
        return
    os.environ.setdefault(LOG_LEVEL_ENV, "2")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def set_verbose() -> None:
    """`--verbose`: TensorFlow logs as it would without shiptoolkit (for this process and its children)."""
    os.environ[VERBOSE_ENV] = "1"
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImport)]
    if _user_log_level is None:
        os.environ.pop(LOG_LEVEL_ENV, None)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders would, and hands its loader to `_QuietLoader`
    (`find_spec` alone, e.g. `shiptoolkit.tensorflow_installed()`, imports nothing)."""

    searching = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "tensorflow" or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # the module keeps its own loader
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImport)]  # one import only
        with startup_lines_hidden():
            self.loader.exec_module(module)


@contextlib.contextmanager
def startup_lines_hidden() -> Iterator[None]:
    """Capture file descriptor 2 for the block; write back every line that is not a `STARTUP_LINE`."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to capture
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not STARTUP_LINE.match(line))
            if kept:
                os.write(2, kept.encode("utf-8"))
