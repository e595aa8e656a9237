"""benchmarks/architectures.py, CI-sized (--quick): the toolkit's training path and a bare fit of the same graph,
each figure a finite positive number, the ratio the two times' quotient, and the Markdown table the docs quote."""

import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"^([a-z0-9_]+): (\S+) (\S+)$", re.MULTILINE)


def test_quick_run_prints_toolkit_bare_and_ratio(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "architectures.py"), "--quick"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = {name: (float(value), unit) for name, value, unit in FIGURE.findall(result.stdout)}
    tag = "linknet_resnet18_64px_b2_train_step"
    assert set(figures) == {f"{tag}_toolkit_s", f"{tag}_bare_fit_s", f"{tag}_overhead"}, result.stdout
    assert all(math.isfinite(v) and v > 0 for v, _ in figures.values())
    toolkit, bare = figures[f"{tag}_toolkit_s"][0], figures[f"{tag}_bare_fit_s"][0]
    assert figures[f"{tag}_overhead"][1] == "x"
    assert math.isclose(figures[f"{tag}_overhead"][0], toolkit / bare, rel_tol=2e-3)  # printed to 4 digits
    assert "| linknet | resnet18 | 64 |" in result.stdout
    assert "ran out of data" not in result.stderr  # the toolkit's batches cover the warm-up and timed fits
