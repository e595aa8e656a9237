"""Helpers shared by the benchmark scripts: timing medians and the output format."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable


def quick() -> bool:
    return "--quick" in sys.argv


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` runs after `warmup` runs (machines are noisy)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, value: float, unit: str) -> None:
    """One `name: value unit` line, the format benchmarks/run.py collects."""
    print(f"{name}: {value:.4g} {unit}", flush=True)
