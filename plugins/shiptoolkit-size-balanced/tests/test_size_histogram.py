import json

import numpy as np
import pytest
from click.testing import CliRunner

import shiptoolkit
import shiptoolkit_size_balanced
from shiptoolkit import plugins
from shiptoolkit.cli import cli
from shiptoolkit.data.rle import rle_encode
from shiptoolkit_size_balanced.histogram import equal_count_edges, histogram


@pytest.fixture
def dataset(tmp_path):
    """Ships of 6, 6, 6 and 2,000 px, and one empty image (only the CSV is read)."""
    rows = ["ImageId,EncodedPixels"]
    for n, (r0, r1, c0, c1) in enumerate([(5, 7, 5, 8), (20, 22, 20, 23), (40, 42, 9, 12), (50, 90, 40, 90)]):
        mask = np.zeros((96, 96), np.uint8)
        mask[r0:r1, c0:c1] = 1
        rows.append(f"s{n}.jpg,{rle_encode(mask)}")
    rows.append("empty.jpg,")
    (tmp_path / "train_ship_segmentations_v2.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


@pytest.fixture
def registered():
    name = shiptoolkit.register_plugin(shiptoolkit_size_balanced, name="size_balanced_test")
    yield name
    plugins.unregister_plugin(name)


def test_bins_follow_the_sampler(dataset):
    areas = np.array([6, 6, 6, 2000])
    assert [r["ships"] for r in histogram(areas, (60, 200))] == [3, 0, 1]
    assert equal_count_edges(np.arange(1, 101), 4) == [26, 50, 75]


def test_the_command_reaches_the_cli_through_the_hook(dataset, registered):
    result = CliRunner().invoke(cli, ["size-histogram", str(dataset), "--size", "96", "--edges", "60,200", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["images"] == 5 and info["ships"] == 4
    assert [(b["from"], b["to"], b["ships"]) for b in info["bins"]] == [(0, 60, 3), (60, 200, 0), (200, None, 1)]
    text = CliRunner().invoke(cli, ["size-histogram", str(dataset), "--size", "96"]).output
    assert "4 ships in 5 images" in text and "equal-count edges" in text
    assert "size-histogram" in CliRunner().invoke(cli, ["--help"]).output


def test_bad_edges_and_bad_data_are_clean_errors(dataset, registered):
    result = CliRunner().invoke(cli, ["size-histogram", str(dataset), "--edges", "200,60"])
    assert result.exit_code == 2 and "increasing" in result.output
    (dataset / "train_ship_segmentations_v2.csv").write_text("ImageId,EncodedPixels\na.jpg,5 x\n")
    result = CliRunner().invoke(cli, ["size-histogram", str(dataset), "--size", "96"])
    assert result.exit_code == 1 and "Traceback" not in result.output and "Error" in result.output
