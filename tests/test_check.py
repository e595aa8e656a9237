import json

import numpy as np
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.data.check import check_dataset
from shiptoolkit.data.rle import parse_many
from shiptoolkit.errors import DataError


@pytest.fixture
def clean(tmp_path, rect_writer):
    specs = {"a.jpg": [(2, 6, 2, 12)], "b.jpg": [(1, 3, 1, 3), (10, 20, 10, 12)], "c.jpg": [], "d.jpg": []}
    return rect_writer(tmp_path / "clean", specs, size=32)


def test_statistics(clean):
    report = check_dataset(clean, size=32, progress=False)
    assert report.ok and report.images == 4 and report.empty_images == 2 and report.ships == 3
    assert report.ships_per_image == {0: 2, 1: 1, 2: 1}
    assert report.ship_area["min"] == 4 and report.ship_area["max"] == 40 and report.ship_area["median"] == 20


def test_every_problem_kind_is_reported(clean):
    csv = clean / "train_ship_segmentations_v2.csv"
    csv.write_text(csv.read_text() + "c.jpg,1 2 3\nmissing.jpg,\n../x.jpg,\ne.jpg,\n")
    (clean / "train_v2" / "e.jpg").write_bytes(b"garbage")
    (clean / "train_v2" / "stray.jpg").write_bytes((clean / "train_v2" / "a.jpg").read_bytes())
    report = check_dataset(clean, size=32, progress=False)
    assert report.problem_counts() == {"bad_rle": 1, "corrupt_image": 1, "missing_image": 1,
                                       "unlisted_file": 1, "unsafe_id": 1}
    info = report.to_dict()
    assert "odd number" in info["problem_examples"]["bad_rle"][0]


def test_cli_table_json_and_exit_codes(clean):
    runner = CliRunner()
    ok = runner.invoke(cli, ["data", "check", str(clean), "--size", "32"])
    assert ok.exit_code == 0 and "no problems found" in ok.output and "without ships:    2 (50.0%)" in ok.output
    (clean / "train_v2" / "b.jpg").unlink()
    bad = runner.invoke(cli, ["data", "check", str(clean), "--size", "32", "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["problems"] == {"missing_image": 1}


def test_cli_synth_then_check(tmp_path):
    runner = CliRunner()
    out = tmp_path / "s"
    made = runner.invoke(cli, ["synth", str(out), "--images", "12", "--size", "96", "--workers", "1"])
    assert made.exit_code == 0 and "wrote 12 images" in made.output
    checked = runner.invoke(cli, ["data", "check", str(out), "--size", "96", "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["images"] == 12
    again = runner.invoke(cli, ["synth", str(out), "--images", "1"])
    assert again.exit_code == 1 and "never overwrites" in again.output


def test_parse_many_matches_parse_one_by_one():
    from shiptoolkit.data.rle import parse_rle, rle_encode

    rng = np.random.default_rng(0)
    rles = [rle_encode((rng.random((20, 20)) < 0.2).astype(np.uint8)) for _ in range(30)] + [""]
    starts, lengths, owner = parse_many(rles, (20, 20))
    for row, rle in enumerate(rles):
        s, n = parse_rle(rle, (20, 20))
        assert np.array_equal(starts[owner == row], s) and np.array_equal(lengths[owner == row], n)
    with pytest.raises(DataError, match="row 1: .*past"):
        parse_many(["1 1", "399 5"], (20, 20))
