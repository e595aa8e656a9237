"""The quality benchmark's machinery, CI-sized (--quick): a recipe and the seed's setup on the same test set."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quality_benchmark_quick_run(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--quick", "--keep",
                             str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if line.startswith("quality_"))
    for name in ("quality_test_f2_mean", "quality_test_f2_min", "quality_all_empty_baseline_mean",
                 "quality_fp_rate_empty_mean", "quality_image_recall_mean", "quality_wall_mean",
                 "quality_seed_setup_test_f2_mean"):
        assert name in lines, result.stdout
    assert "| recipe, seed 1 |" in result.stdout and "| seed setup, seed 1 (30 test images) |" in result.stdout
    # Both runs were scored on the same independent test set, never on validation images.
    import json

    metrics = [json.loads(p.read_text())["metrics"] for p in sorted(tmp_path.glob("*/*/metrics.json"))]
    assert len(metrics) == 2 and {m["role"] for m in metrics} == {"test"}
    assert len({m["source"] for m in metrics}) == 1 and metrics[0]["images"] == metrics[1]["images"] == 30
