"""Which worker this process is in a multi-machine training run, from `--workers` or `TF_CONFIG`.

Pure helpers (no TensorFlow): the CLI builds `TF_CONFIG` with them before TensorFlow starts, and
the training stage asks `this_worker()` whether it is the chief, the one process that writes the
run directory. TensorFlow's `MultiWorkerMirroredStrategy` reads the same `TF_CONFIG`.

Precedence: `--workers`/`--worker-index` replace a `TF_CONFIG` already in the environment;
without them a `TF_CONFIG` set by the launcher (Slurm script, Kubernetes operator) is used as it is.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shiptoolkit.errors import ConfigError

ENV = "TF_CONFIG"
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d+)")


@dataclass(frozen=True)
class Worker:
    """This process in the cluster: its index among the workers, how many there are, and whether
    it is the chief (worker 0, or the task of type "chief"): the only one that writes the run."""

    index: int = 0
    count: int = 1
    is_chief: bool = True

    def describe(self) -> str:
        role = "the chief" if self.is_chief else "not the chief: the chief writes the run directory"
        return f"worker {self.index} of {self.count} ({role})"


def parse_workers(text: str) -> list[str]:
    """`host:port,host:port` as a list; refuses an empty item, a missing or bad port, a repeated address.

    Example:
        >>> parse_workers("node1:12345, node2:12345")
        ['node1:12345', 'node2:12345']
    """
    items = [item.strip() for item in text.split(",")]
    for item in items:
        match = _HOST_PORT.fullmatch(item)
        if not match or not 0 < int(match["port"]) < 65536:
            raise ConfigError(f"--workers: {item!r} is not host:port (a port between 1 and 65535). "
                              f"Received: --workers {text}; write e.g. --workers node1:12345,node2:12345")
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise ConfigError(f"--workers names {', '.join(repeated)} more than once: every worker needs its own "
                          f"host:port. Received: --workers {text}")
    return items


def tf_config(workers: list[str], index: int) -> str:
    """The `TF_CONFIG` JSON for worker `index` of `workers` (worker 0 is the chief)."""
    if not 0 <= index < len(workers):
        raise ConfigError(f"--worker-index {index} is out of range: --workers lists {len(workers)} worker(s), "
                          f"so the index is 0..{len(workers) - 1} (0 = the chief).")
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def this_worker(environ: Mapping[str, str] | None = None) -> Worker:
    """This process's place in the `TF_CONFIG` cluster; one lone chief when `TF_CONFIG` is unset.

    Follows TensorFlow's rule: the chief is the task of type "chief", or worker 0 when the
    cluster has no "chief" job.
    """
    text = (os.environ if environ is None else environ).get(ENV, "")
    if not text.strip():
        return Worker()
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
        count = sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{ENV} is not a TensorFlow cluster spec ({type(exc).__name__}: {exc}). Expected e.g. "
                          '{"cluster": {"worker": ["node1:12345", "node2:12345"]}, "task": {"type": "worker", '
                          f'"index": 0}}}}. Received: {ENV}={text}') from None
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    position = index + (len(cluster.get("chief", [])) if kind == "worker" else 0)
    return Worker(position, max(count, 1), is_chief)
