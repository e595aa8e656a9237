"""Ctrl-C or SIGTERM ends a command at once, saying where the run is and how to continue it.

SIGTERM is how Slurm, Kubernetes and preemptible machines stop a job: it is handled as Ctrl-C is
(the run marked interrupted, the run directory and the resume command printed), with exit code
143 (128 + SIGTERM) instead of 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from shiptoolkit.rundir import RunDir, RunInterrupted
from shiptoolkit.runstate import RunLock, note_stop_signal, stop_signal

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it (SIGTERM: 143)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 5.0  # how long Keras may take to unwind after Ctrl-C before the process ends anyway
_also: list = []  # what the command in progress adds to the message (e.g. how to resume a whole cross-validation)
_how: dict = {}  # the resume command ("train" or "run") and the message when no run directory was made


@contextlib.contextmanager
def exit_on_interrupt(also=None, resume: str = "train", nothing_to_resume: str | None = None):
    """Print the run directory and the resume command on Ctrl-C or SIGTERM, then exit with 128 + the
    signal (130, 143).

    `also`: a function giving one more line for the message (or None), asked at the moment of the
    interrupt: e.g. `shiptoolkit cv --resume CV_DIR` for a cross-validation, whose fold run was cut.
    `resume`: the command that goes on: "train" (`train --resume`) or "run" (`run --resume`, which
    finishes every stage left). `nothing_to_resume`: the message when no run directory was made.

    Any error after the signal ends the command as the interrupt: the interrupt can land where the
    cleanup raises something else (TensorFlow's tracing once raised `AssertionError: Nesting
    violated for default stack of FuncGraph`, which made a Ctrl-C exit 1 with a traceback).

    Why `os._exit`: Keras' data-loading threads are not daemons; a normal exit waits for them,
    and a thread blocked on a full queue once held a process for over ten minutes after Ctrl-C.
    The run's state is already on disk (train_state.json says "interrupted"), so nothing is lost.
    """
    previous = _install_handlers()
    _also[:] = [also] if also is not None else []
    _how.update(resume=resume, nothing=nothing_to_resume)
    RunDir.active = None
    try:
        yield
    except RunInterrupted as exc:
        _say_interrupted(exc.run_dir)
        _exit_now()
    except KeyboardInterrupt:
        _say_interrupted(None)
        _exit_now()
    except BaseException:
        if stop_signal() is None:
            raise
        _say_interrupted(RunDir.active.path if RunDir.active is not None else None)
        _exit_now()
    finally:
        _also.clear()
        note_stop_signal(None)
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler installed outside Python, which cannot be put back
                signal.signal(signum, handler)


def _install_handlers() -> dict:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt (noting the signal), and start a deadline: Keras'
    cleanup after an interrupt joins its loader threads, which can block for minutes; past
    `GRACE_SECONDS` the run is marked interrupted and the process ends anyway. A second signal ends
    it at once."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum, frame):
        note_stop_signal(signum)
        for stop in STOP_SIGNALS:
            signal.signal(stop, lambda *_: _force_exit())
        threading.Thread(target=_deadline, daemon=True).start()
        raise KeyboardInterrupt

    return {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}


def _exit_code() -> int:
    return 128 + stop_signal() if stop_signal() is not None else EXIT_INTERRUPTED


def _deadline() -> None:
    time.sleep(GRACE_SECONDS)
    _force_exit()


def _force_exit() -> None:
    run = RunDir.active
    if run is not None:
        with contextlib.suppress(Exception):
            if run.read_state().get("status") != "interrupted":
                run.mark("interrupted")
    RunLock.release_all()  # os._exit skips the `finally` that would release the run's lock
    _say_interrupted(run.path if run is not None else None)
    sys.stderr.flush()
    os._exit(_exit_code())


def _say_interrupted(run_dir) -> None:
    """The run directory and the resume command, or that there is nothing to resume."""
    if stop_signal() == signal.SIGTERM:
        click.echo("\nstopped by SIGTERM.", err=True)
    text = _resume_hint(Path(run_dir)) if run_dir is not None else (
        _how.get("nothing") or "interrupted before a run directory was made: nothing to resume.")
    click.echo(f"\n{text}", err=True)
    for hint in _also:
        with contextlib.suppress(Exception):
            line = hint()
            if line:
                click.echo(line, err=True)


def _resume_hint(run_dir: Path) -> str:
    """`train --resume`; or for a `run`, `run --resume` (every stage left) and, while its training is
    unfinished, `train --resume` for the training alone."""
    if _how.get("resume") != "run":
        return RunInterrupted(run_dir).hint
    left = RunDir(run_dir).stages_left()
    lines = [f"interrupted: the run directory is {run_dir}",
             f"continue with: shiptoolkit run --resume {run_dir}"
             + (f" (the stages left: {', '.join(left)})" if left else "")]
    if "train" in left:
        lines.append(f"or only its training: shiptoolkit train --resume {run_dir}")
    return "\n".join(lines)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        os._exit(_exit_code())  # loader threads still running: do not wait for them
    sys.exit(_exit_code())
