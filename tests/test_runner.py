"""The runner, the examples and the CLI stages, end to end on tiny data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_passes_dry_run(example):
    result = CliRunner().invoke(cli, ["run", str(example), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run: config is valid" in result.output and '"backbone"' in result.output


def test_dry_run_reports_config_mistakes_cleanly(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nepoch = 3\n[sampler]\nname = "mixd"\n')
    result = CliRunner().invoke(cli, ["run", str(bad), "--dry-run"])
    assert result.exit_code == 1 and "unknown key 'epoch'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["run", str(bad), "--dry-run", "--set", "train.epochs=1"])
    result = CliRunner().invoke(cli, ["run", str(bad), "--dry-run", "--set", "train.epoch=1"])
    assert "Did you mean 'epochs'" in result.output


def test_set_overrides_show_in_the_resolved_config():
    result = CliRunner().invoke(cli, ["run", str(ROOT / "examples" / "quickstart.toml"), "--dry-run",
                                      "--set", "train.epochs=1", "--set", "sampler.ship_fraction=0.3"])
    assert result.exit_code == 0 and "epochs = 1" in result.output and "ship_fraction = 0.3" in result.output


def test_full_run_train_predict_evaluate(tmp_path, tiny_run_toml):
    config = tiny_run_toml("e2e", 'name = "mixed"\npatch_size = 64\npatches_per_epoch = 32',
                           extra="[evaluate]\nscan_thresholds = [0.3, 0.5]")
    result = CliRunner().invoke(cli, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "all-empty baseline f2" in result.output
    run_dir = next((tmp_path / "runs").iterdir())
    files = {p.name for p in run_dir.iterdir()}
    assert {"best.keras", "submission.csv", "metrics.json", "history.png"} <= files
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"f2", "f2_all_empty_baseline", "dice_global", "false_positive_rate_empty"} <= set(metrics["metrics"])
    assert len(metrics["scan"]) == 2 and metrics["best"]["threshold"] in (0.3, 0.5)
    # The submission holds every validation image.
    import pandas as pd

    assert pd.read_csv(run_dir / "submission.csv")["ImageId"].nunique() == metrics["metrics"]["images"]


def test_predict_cli_with_a_saved_model(tmp_path, rect_dataset):
    from shiptoolkit.models.saving import save_model
    from shiptoolkit.models.unet import unet

    model_path = save_model(unet((32, 32, 3), base_filters=4, depth=2), tmp_path / "m.keras")
    out = tmp_path / "sub.csv"
    result = CliRunner().invoke(cli, ["predict", "--model", str(model_path), "--images", str(rect_dataset / "train_v2"),
                                      "--out", str(out), "--quiet", "--set", "data.image_size=96"])
    assert result.exit_code == 0, result.output
    assert "12 images" in result.output and out.is_file()


def test_custom_experiment_script_runs(tmp_path):
    script = ROOT / "examples" / "custom_experiment.py"
    result = subprocess.run([sys.executable, str(script), "--tiny", "--out", str(tmp_path)], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "f2" in result.stdout and "all-empty baseline" in result.stdout


def test_gate_comparison_script_runs(tmp_path):
    script = ROOT / "examples" / "compare_gate.py"
    result = subprocess.run([sys.executable, str(script), "--tiny", "--out", str(tmp_path)], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert [r["setup"] for r in rows][-2:] == ["resnet34_mixed + gate + watershed split",
                                              "resnet34_mixed + seam channel + gate + seam-guided split"]
    assert all(r["all-empty baseline"] == rows[0]["all-empty baseline"] for r in rows)  # the same images
    assert "| f2 | all-empty baseline |" in (tmp_path / "comparison.md").read_text()
