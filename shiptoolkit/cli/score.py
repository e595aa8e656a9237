"""`shiptoolkit score SUBMISSION TRUTH`: the competition metric on any submission, locally."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from shiptoolkit.cli import cli
from shiptoolkit.scoring.competition import KAGGLE_EMPTY_PRIOR
from shiptoolkit.scoring.submission import score_submission


def format_summary(summary: dict) -> str:
    """The f2 line (6 decimals) with its all-empty baseline, then a small table."""
    def pct(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{v:.4f}"

    lines = [f"f2: {summary['f2']:.6f}",
             f"all-empty baseline f2: {summary['f2_all_empty_baseline']:.6f}  (predicting no ship on these images)",
             f"  images                     {summary['images']} ({summary['empty_images']} without ships)",
             f"  ships true / predicted     {summary['true_ships']} / {summary['pred_ships']}",
             f"  image-level precision      {pct(summary['image_precision'])}",
             f"  image-level recall         {pct(summary['image_recall'])}",
             f"  false-positive rate, empty {pct(summary['false_positive_rate_empty'])}",
             f"  mean f2 on ship images     {pct(summary['f2_ship_images'])}",
             f"f2 prior-weighted: {pct(summary['f2_prior_weighted'])}   "
             f"all-empty baseline: {summary['empty_prior']:.4f}  "
             f"(what the f2 would be at {summary['empty_prior']:.1%} empty images, as on Kaggle)"]
    return "\n".join(lines)


def check_new_file(path: str, option: str, overwrite: bool, inputs: tuple[str, ...] = ()) -> None:
    """Refuse to clobber: an existing `path` needs `--overwrite`, and an input file never is one."""
    target = Path(path).resolve()
    if any(target == Path(p).resolve() for p in inputs):
        raise click.ClickException(f"{option} {path!r} is one of the input files; choose another file name.")
    if target.exists() and not overwrite:
        raise click.ClickException(f"{option} {path!r} exists and would be overwritten. Choose another file name, "
                                     "or pass --overwrite to replace it.")


@cli.command()
@click.argument("submission", type=click.Path(exists=True, dir_okay=False))
@click.argument("truth", type=click.Path(exists=True, dir_okay=False))
@click.option("--per-image", type=click.Path(dir_okay=False),
              help="Write each image's score and counts to this CSV (an existing file only with --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --per-image file.")
@click.option("--lenient", is_flag=True, help="Warn about invalid rows instead of failing; score what can be scored.")
@click.option("--size", default=768, show_default=True, type=click.IntRange(min=1),
              help="Image height and width in pixels (the RLEs index into size x size).")
@click.option("--json", "as_json", is_flag=True, help="Output the summary as JSON.")
@click.option("--empty-prior", default=KAGGLE_EMPTY_PRIOR, show_default=True, type=click.FloatRange(0, 1, min_open=True,
              max_open=True), help="Fraction of empty images the prior-weighted f2 is weighed to (Kaggle's).")
def score(submission: str, truth: str, per_image: str | None, overwrite: bool, lenient: bool, size: int,
          as_json: bool, empty_prior: float) -> None:
    """Score SUBMISSION against TRUTH with the competition metric (F2 over IoU 0.50..0.95).

    Both are ImageId,EncodedPixels CSVs, one row per ship. The score is the mean over TRUTH's
    images; it is printed beside the all-empty baseline (predicting nothing on the same images).

    Example:

        shiptoolkit score runs/exp-20260101-120000/submission.csv truth.csv --per-image scores.csv
    """

    if per_image:  # checked before scoring: a refusal should not cost a whole scoring pass
        check_new_file(per_image, "--per-image", overwrite, inputs=(submission, truth))
    result = score_submission(submission, truth, lenient=lenient, shape=(size, size), empty_prior=empty_prior)
    if per_image:
        result.per_image.to_csv(per_image, index=False)
    if as_json:
        click.echo(json.dumps({**result.summary, "problems": result.problems}, indent=2))
    else:
        click.echo(format_summary(result.summary))
