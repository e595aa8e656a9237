"""`shiptoolkit size-histogram DATASET`: how a dataset's ships spread over area bins.

Why: `size_balanced` gives every area bin the same share of patches, so its `area_edges` decide
what "small" means. This command shows how many ships fall in each bin of given edges, and the
edges that would put the same number of ships in every bin.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import click
import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.rle import parse_many
from shiptoolkit_size_balanced.sampler import SizeBalancedSampler

# The sampler's own default, read from its signature so the two never drift apart.
DEFAULT_EDGES = tuple(inspect.signature(SizeBalancedSampler).parameters["area_edges"].default)


def ship_areas(csv_path: str | Path, size: int = 768) -> tuple[np.ndarray, int]:
    """(the area in pixels of every ship in a Kaggle segmentation CSV, the number of images)."""
    index = AirbusIndex.from_csv(csv_path, Path(csv_path).parent, shape=(size, size))
    rles = [rle for record in index for rle in record.rles]
    _, lengths, owner = parse_many(rles, (size, size))
    return np.bincount(owner, weights=lengths, minlength=len(rles)).astype(np.int64), len(index)


def histogram(areas: np.ndarray, edges: tuple[int, ...]) -> list[dict]:
    """One row per bin of `edges` (the sampler's bins: `np.digitize`): its range, ships, share."""
    counts = np.bincount(np.digitize(areas, edges), minlength=len(edges) + 1)
    bounds = [0, *edges, None]
    return [{"from": bounds[i], "to": bounds[i + 1], "ships": int(n),
             "share": round(float(n) / max(1, areas.size), 4)} for i, n in enumerate(counts)]


def equal_count_edges(areas: np.ndarray, bins: int) -> list[int]:
    """Edges that put about the same number of ships in each of `bins` bins (fewer if areas repeat)."""
    if areas.size == 0 or bins < 2:
        return []
    quantiles = np.quantile(areas, np.arange(1, bins) / bins)
    return sorted({int(round(q)) for q in quantiles if q > 0})


def _parse_edges(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        edges = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"give whole pixel counts separated by commas, e.g. 60,200,800. "
                                 f"Received: {value!r}") from None
    if list(edges) != sorted(set(edges)) or any(e <= 0 for e in edges):
        raise click.BadParameter(f"edges must be positive and increasing. Received: {value!r}")
    return edges


@click.command(name="size-histogram")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("--csv", default="train_ship_segmentations_v2.csv", show_default=True,
              help="Segmentation CSV inside DATASET (when DATASET is a folder).")
@click.option("--size", default=768, show_default=True, help="Image height and width.")
@click.option("--edges", default=",".join(map(str, DEFAULT_EDGES)), show_default=True, callback=_parse_edges,
              help="Ship-area bin edges in pixels (size_balanced's area_edges).")
@click.option("--suggest", default=4, show_default=True, help="Also suggest edges for this many equal-count bins.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def size_histogram(dataset: str, csv: str, size: int, edges: tuple[int, ...], suggest: int, as_json: bool) -> None:
    """Ship-size histogram of DATASET (a Kaggle-layout folder or its CSV), to choose the
    `area_edges` of the size_balanced sampler.

    Example:

        shiptoolkit size-histogram /data/airbus --edges 60,200,800,3000
    """
    csv_path = Path(dataset) / csv if Path(dataset).is_dir() else Path(dataset)
    areas, images = ship_areas(csv_path, size)
    rows, suggested = histogram(areas, edges), equal_count_edges(areas, suggest)
    if as_json:
        click.echo(json.dumps({"csv": str(csv_path), "images": images, "ships": int(areas.size), "bins": rows,
                               "equal_count_edges": suggested}, indent=2))
        return
    click.echo(f"{areas.size} ships in {images} images ({csv_path})")
    widest = max((r["ships"] for r in rows), default=0)
    for r in rows:
        label = f"{r['from']}-{r['to'] - 1} px" if r["to"] is not None else f">= {r['from']} px"
        bar = "#" * round(40 * r["ships"] / widest) if widest else ""
        click.echo(f"  {label:<16} {r['ships']:>8} {r['share']:>7.1%}  {bar}")
    if suggested:
        click.echo(f"equal-count edges for {suggest} bins: area_edges = {suggested}")
