"""The whole-scene example and benchmark run, CI-sized: examples/scene_detect.py --tiny (synth --scene, a tiny
quickstart, detect, the score against the truth) and benchmarks/scenes.py --quick (every figure printed)."""

import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"^([a-z0-9_]+): (\S+) (\S+)$", re.MULTILINE)
EXPECTED = ["detect_peak_rss_256px", "detect_peak_rss_384px", "detect_peak_rss_large_over_small", "detect_km2_per_s",
            "detect_no_centred_windows_km2_per_s", "predict_jpg_chips_km2_per_s", "detect_over_predict_throughput",
            "detect_no_centred_windows_over_predict_throughput", "detect_centred_windows_256px",
            "detect_centred_windows_384px", "scene_ships_across_borders", "scene_ships_inside_windows",
            "scene_duplicates_across_core_borders", "scene_hulls_split_by_model", "scene_recall_across_borders",
            "scene_recall_inside_windows", "scene_recall_inside_minus_across", "scene_recall_inside_minus_across_se",
            "scene_recall_inside_minus_across_size_matched_se", "scene_false_detections",
            "scene_chips_across_borders", "scene_recall_across_borders_predict_on_centred_chip",
            "scene_recall_across_borders_detect_minus_chip", "scene_recall_across_borders_detect_minus_chip_se",
            "scene_duplicates_across_borders_beyond_chip", "scene_recall_inside_windows_predict_on_window_chip",
            "scene_duplicates_inside_windows_beyond_chip", "sparse_detect_over_predict_throughput",
            "sparse_detect_centred_windows"]


def test_the_scene_example_runs_from_synth_to_the_score(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "scene_detect.py"), "--tiny", "--out",
                             str(tmp_path / "ex")], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "12 ships" in result.stdout and "| across window borders |" in result.stdout
    assert (tmp_path / "ex" / "ships.geojson").is_file() and (tmp_path / "ex" / "scene" / "scene.tif").is_file()


def test_the_scenes_benchmark_quick_run_prints_every_figure(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scenes.py"), "--quick", "--keep",
                             str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = {name: float(value) for name, value, _ in FIGURE.findall(result.stdout)}
    assert [name for name in EXPECTED if name not in figures] == []
    assert all(math.isfinite(figures[name]) for name in EXPECTED)
    assert "untrained brightness model" in result.stdout  # --quick says what its model is
    assert figures["scene_ships_across_borders"] > 0 and figures["scene_ships_inside_windows"] > 0
    assert 0.5 < figures["detect_peak_rss_large_over_small"] < 2
