"""Run every benchmark script in this folder and print their `name: value unit` lines.

Usage:
    python benchmarks/run.py            # full runs
    python benchmarks/run.py --quick    # smoke runs (each script's --quick)
    python benchmarks/run.py score rle  # only scripts whose name contains one of the words

Each script prints its own figures with the ratio to its baseline measured in the same run.
Quote medians of several runs: the machines are shared and noisy. gpu.py's full run needs a GPU: without
one it is skipped, saying so (its --quick runs anywhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU, asked in a subprocess (this runner imports no TensorFlow)."""
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    result = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = result.stdout.split()
    return result.returncode == 0 and bool(lines) and lines[-1] != "0"


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    words = [a for a in argv if not a.startswith("--")]
    # package_map.py is the structure tests' tooling, imported by structure.py: no figures of its own
    scripts = sorted(p for p in HERE.glob("*.py")
                     if p.stem not in ("run", "package_map") and not p.stem.startswith("_"))
    if words:
        scripts = [p for p in scripts if any(w in p.stem for w in words)]
    failed = []
    for script in scripts:
        print(f"# {script.name}", flush=True)
        if script.stem == "gpu" and not quick and not gpu_visible():
            print("# gpu.py: skipped: no GPU visible to TensorFlow (`run.py --quick` runs its --quick)", flush=True)
            continue
        start = time.perf_counter()
        cmd = [sys.executable, str(script), *(["--quick"] if quick else [])]
        result = subprocess.run(cmd, text=True, capture_output=True)
        lines = [ln for ln in result.stdout.splitlines() if ": " in ln and not ln.startswith("#")]
        print("\n".join(lines) if lines else "(no figures)")
        seconds = time.perf_counter() - start
        print(f"# {script.name}: {seconds:.1f} s wall, exit {result.returncode}", flush=True)
        if result.returncode:
            failed.append(script.name)
            print(result.stderr[-2000:], file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
