"""Ctrl-C ends a command at once, saying where the run is and how to continue it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

import click

from shiptoolkit.rundir import RunDir, RunInterrupted

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
GRACE_SECONDS = 5.0  # how long Keras may take to unwind after Ctrl-C before the process ends anyway
_also: list = []  # what the command in progress adds to the message (e.g. how to resume a whole cross-validation)


@contextlib.contextmanager
def exit_on_interrupt(also=None):
    """Print the run directory and the resume command on Ctrl-C, then exit with 130.

    `also`: a function giving one more line for the message (or None), asked at the moment of the
    interrupt: e.g. `shiptoolkit cv --resume CV_DIR` for a cross-validation, whose fold run was cut.

    Why `os._exit`: Keras' data-loading threads are not daemons; a normal exit waits for them,
    and a thread blocked on a full queue once held a process for over ten minutes after Ctrl-C.
    The run's state is already on disk (train_state.json says "interrupted"), so nothing is lost.
    """
    previous = _install_handler()
    _also[:] = [also] if also is not None else []
    try:
        yield
    except RunInterrupted as exc:
        _say_interrupted(exc.run_dir)
        _exit_now()
    except KeyboardInterrupt:
        _say_interrupted(None)
        _exit_now()
    finally:
        _also.clear()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _install_handler():
    """Ctrl-C raises KeyboardInterrupt as usual, and starts a deadline: Keras' cleanup after an
    interrupt joins its loader threads, which can block for minutes; past `GRACE_SECONDS` the
    run is marked interrupted and the process ends anyway. A second Ctrl-C ends it at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigint(signum, frame):
        signal.signal(signal.SIGINT, lambda *_: _force_exit())
        threading.Thread(target=_deadline, daemon=True).start()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, on_sigint)


def _deadline() -> None:
    time.sleep(GRACE_SECONDS)
    _force_exit()


def _force_exit() -> None:
    run = RunDir.active
    if run is not None:
        with contextlib.suppress(Exception):
            if run.read_state().get("status") != "interrupted":
                run.mark("interrupted")
    _say_interrupted(run.path if run is not None else None)
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _say_interrupted(run_dir) -> None:
    """The run directory and the resume command, or that there is nothing to resume."""
    text = RunInterrupted(run_dir).hint if run_dir is not None else \
        "interrupted before a run directory was made: nothing to resume."
    click.echo(f"\n{text}", err=True)
    for hint in _also:
        with contextlib.suppress(Exception):
            line = hint()
            if line:
                click.echo(line, err=True)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        os._exit(EXIT_INTERRUPTED)  # loader threads still running: do not wait for them
    sys.exit(EXIT_INTERRUPTED)
