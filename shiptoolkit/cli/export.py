"""`shiptoolkit export RUN_DIR --format saved_model|onnx|tflite --out FOLDER`: models for serving."""

from __future__ import annotations

import click

from shiptoolkit.cli import cli, model_and_config
from shiptoolkit.inference.export import export_run
from shiptoolkit.inference.exported import FORMATS, MANIFEST


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(list(FORMATS)),
              help="saved_model (TensorFlow), onnx (needs the `onnx` extra) or tflite (LiteRT).")
@click.option("--out", required=True, type=click.Path(),
              help="Folder to write (an existing one only with --overwrite, and only an earlier export).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at --out (once the new one is complete).")
@click.option("--no-check", is_flag=True,
              help="Skip reloading the export with its runtime and comparing it with the Keras model.")
@click.option("--trust-run-plugins", is_flag=True,
              help="Import the [plugins] modules of the run's config.toml (they run code; off by default).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value recorded in the export, e.g. --set predict.threshold=0.6.")
def export(run_dir: str, fmt: str, out: str, overwrite: bool, no_check: bool, trust_run_plugins: bool,
           overrides: tuple[str, ...]) -> None:
    """Export a run's models for serving without shiptoolkit: the segmenter, and its gate classifier.

    The segmenter takes whole images (N, H, W, 3) float32 RGB in 0..255 (sides a multiple of 32)
    and gives (N, H, W, 1) ship probabilities. shiptoolkit_export.json beside it holds the image size, the
    post-processing in force (the run's tuned postprocess.json, else [predict]) and the gate's
    image size and threshold. The export is reloaded with its runtime and checked against the
    Keras model before --out appears. `shiptoolkit predict --model FOLDER` reads it back.

    Example:

        shiptoolkit export runs/quickstart-20260101-120000 --format onnx --out exports/quickstart-onnx
    """
    _, config = model_and_config(None, None, run_dir, overrides, trust_run_plugins=trust_run_plugins)
    result = export_run(run_dir, fmt, out, config=config, overwrite=overwrite, check=not no_check)
    m = result.manifest
    gate = f"; gate: {m['gate']['file']} (threshold {m['gate']['threshold']:.3g})" if m["gate"] else "; no gate"
    click.echo(f"wrote {result.path}: {m['segmenter']['file']} ({fmt}){gate}; settings in {MANIFEST}")
    if "check" in m:
        c = m["check"]
        diffs = ", ".join(f"{k.removesuffix('_max_abs_diff')} {v:.2g}" for k, v in c.items() if k.endswith("_diff"))
        click.echo(f"checked with its runtime on a {c['image'].removeprefix('seeded ')} image: max abs diff {diffs}")
