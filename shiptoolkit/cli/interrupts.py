"""Ctrl-C ends a command at once, saying where the run is and how to continue it."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import click

from shiptoolkit.rundir import RunInterrupted

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


@contextlib.contextmanager
def exit_on_interrupt():
    """Print the run directory and the resume command on Ctrl-C, then exit with 130.

    Why `os._exit`: Keras' data-loading threads are not daemons; a normal exit waits for them,
    and a thread blocked on a full queue once held a process for over ten minutes after Ctrl-C.
    The run's state is already on disk (train_state.json says "interrupted"), so nothing is lost.
    """
    try:
        yield
    except RunInterrupted as exc:
        click.echo(f"\n{exc.hint}", err=True)
        _exit_now()
    except KeyboardInterrupt:
        click.echo("\ninterrupted before a run directory was made: nothing to resume.", err=True)
        _exit_now()


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        os._exit(EXIT_INTERRUPTED)  # loader threads still running: do not wait for them
    sys.exit(EXIT_INTERRUPTED)
