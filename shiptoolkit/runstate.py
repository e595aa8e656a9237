"""Who works on a run directory, and whether it is still what it was: an exclusive lock naming the
process (pid, host), its heartbeat, whether a recorded process still lives, the stop signal (Ctrl-C,
SIGTERM) this process received, and a hash per key of the run's config.

A run's train_state.json holds the pid, host and a heartbeat time of the process working on it
(`shiptoolkit.rundir.RunDir.guard` writes them, and the heartbeat every `HEARTBEAT_SECONDS`), so a
run left "running" by a process that was killed (`kill -9`, the OOM killer) reads as
"died (pid N on HOST no longer running)". The lock file keeps two processes from writing one run
(two `train --resume RUN` would mix their epochs): the kernel's `flock` lock, released when the
process ends however it ends; the file also names its holder, for the message of a refused one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from shiptoolkit.errors import ShiptoolkitError

try:
    import fcntl
except ImportError:  # Windows: the lock file's content alone decides
    fcntl = None

HEARTBEAT_SECONDS = 30.0  # how often a working process writes its heartbeat into train_state.json
STALE_SECONDS = 600.0  # a heartbeat older than this: the process is taken for dead (one on another host)
HOST = socket.gethostname()
_stop: list[int] = []  # the stop signal this process received (`cli.interrupts` notes it)


class RunInUse(ShiptoolkitError):
    """Another live process holds the run directory's lock."""


def note_stop_signal(signum: int | None) -> None:
    """Remember (or with None forget) that this process was asked to stop: any error after it ends
    the run as interrupted, since an interrupt can land in code whose cleanup then raises something
    else (TensorFlow's tracing once raised `AssertionError: Nesting violated ...` instead)."""
    _stop[:] = [signum] if signum is not None else []


def stop_signal() -> int | None:
    return _stop[0] if _stop else None


def now() -> str:
    """The time as train_state.json and the lock file write it (ISO 8601, local, with its offset)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _age_seconds(stamp) -> float | None:
    try:
        return (datetime.now().astimezone() - datetime.fromisoformat(str(stamp))).total_seconds()
    except (TypeError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except (OSError, OverflowError, ValueError):
        return False
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def why_dead(record: dict) -> str | None:
    """Why the process a record names (pid, host, heartbeat) is known not to run, e.g. "pid 12 on
    node3 no longer running"; None when it may still run (or the record names no process)."""
    pid, host, beat = record.get("pid"), record.get("host"), record.get("heartbeat")
    if not isinstance(pid, int):
        return None
    last = f"; last heartbeat {beat}" if beat else ""
    if host == HOST and not pid_alive(pid):
        return f"pid {pid} on {host} no longer running{last}"
    age = _age_seconds(beat)
    if age is not None and age > STALE_SECONDS:
        return f"no heartbeat since {beat}, pid {pid} on {host}"
    return None


def status_line(state: dict) -> str:
    """A run's status as readers say it: "running (pid N on HOST, heartbeat T)", "died (pid N on
    HOST no longer running; ...)" for a run whose process was killed, else the status and reason."""
    status = str(state.get("status", "unknown"))
    if status != "running":
        return f"{status} ({state['reason']})" if state.get("reason") else status
    dead = why_dead(state)
    if dead:
        return f"died ({dead})"
    if not isinstance(state.get("pid"), int):
        return "running (no process recorded: if none works on it, it died)"
    return f"running (pid {state['pid']} on {state.get('host')}, heartbeat {state.get('heartbeat')})"


class RunLock:
    """The exclusive lock of one run directory, reentrant within a process.

    `acquire()` returns a note when it took over the lock file of a process that died, and raises
    `RunInUse` naming the holder when a live one holds it.
    """

    _held: dict[str, list] = {}  # lock file -> [file descriptor, depth] held by this process

    def __init__(self, path: Path, run: Path) -> None:
        self.path, self.run = Path(path), Path(run)
        self.key = str(self.path.resolve())

    def acquire(self) -> tuple[bool, str | None]:
        """(first: this process did not hold it yet, a note on a lock taken over or None)."""
        if self.key in RunLock._held:
            RunLock._held[self.key][1] += 1
            return False, None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            previous = self._read(fd)
            mine = previous.get("pid") == os.getpid() and previous.get("host") == HOST
            locked = self._flock(fd)
            if locked is False or (locked is None and previous.get("pid") is not None and not mine
                                   and not why_dead(previous)):
                raise RunInUse(self._in_use(previous))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": HOST, "since": now(),
                                      "command": " ".join(sys.argv)}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        RunLock._held[self.key] = [fd, 1]
        note = None if mine or previous.get("pid") is None else (
            f"the lock of pid {previous['pid']} on {previous.get('host')} (no longer running) was taken over")
        return True, note

    def release(self) -> None:
        held = RunLock._held.get(self.key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            release_fd(RunLock._held.pop(self.key)[0])

    @staticmethod
    def release_all() -> None:
        """Clear every lock this process holds (before `os._exit`, which skips the `finally` blocks)."""
        for key in list(RunLock._held):
            release_fd(RunLock._held.pop(key)[0])

    @staticmethod
    def _flock(fd: int) -> bool | None:
        """True: locked; False: another process holds it; None: no kernel lock here (the content decides)."""
        if fcntl is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:  # a file system without flock
            return None

    @staticmethod
    def _read(fd: int) -> dict:
        with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
            info = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
            return info if isinstance(info, dict) else {}
        return {}

    def _in_use(self, holder: dict) -> str:
        who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
        since = f", since {holder['since']}" if holder.get("since") else ""
        command = f" (`{holder['command']}`)" if holder.get("command") else ""
        return (f"{self.run} is in use by {who}{since}{command}: two processes writing one run would mix its "
                "epochs and files. Wait for that one to end (or stop it), then run this again.")


def release_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)  # no holder named: the next one takes it without a note
    with contextlib.suppress(OSError):
        os.close(fd)  # closing ends the flock


class Heartbeat:
    """Calls `beat()` every `every` seconds in a daemon thread, from `start()` until `stop()`."""

    def __init__(self, beat: Callable[[], None], every: float = HEARTBEAT_SECONDS) -> None:
        self.beat, self.every = beat, every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shiptoolkit-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.every):
            with contextlib.suppress(Exception):  # a missed beat is no reason to stop a run
                self.beat()


def config_fingerprint(path: Path) -> str:
    """"section.key=hash section.key=hash ..." of a config file (a short hash of each key's value; ""
    when the file is unreadable). A resume compares it with the one noted when the run wrote its
    config.toml: hand edits show, key by key (`config_changes`)."""
    try:
        values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    flat = []
    for section, table in values.items():
        for key, value in (table.items() if isinstance(table, dict) else [("", table)]):
            text = json.dumps(value, sort_keys=True, default=str)
            flat.append(f"{section}.{key}={hashlib.sha256(text.encode()).hexdigest()[:10]}" if key else
                        f"{section}={hashlib.sha256(text.encode()).hexdigest()[:10]}")
    return " ".join(flat)


def config_changes(noted: str, path: Path) -> list[str]:
    """The keys whose value differs between a noted `config_fingerprint` and the file now (added,
    removed or changed), sorted."""
    before, after = (dict(item.rsplit("=", 1) for item in text.split() if "=" in item)
                     for text in (noted, config_fingerprint(path)))
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
