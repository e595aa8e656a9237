"""Sharded prediction (`predict --shard I/N`) and `submission merge`: parts that merge into the unsharded
submission, and a clear refusal for every way the parts can fail to make one clean whole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.sharding import Shard, parse_shard, shard_of, sidecar_path
from shiptoolkit.models.saving import save_model

IMAGES = 24


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def predict(model: Path, images: Path, out: Path, *args: str):
    result = invoke("predict", "--model", str(model), "--images", str(images), "--out", str(out),
                    "--set", "data.image_size=64", "--quiet", *args)
    assert result.exit_code == 0, result.output
    return result


def merge(*args: str | Path):
    return invoke("submission", "merge", *map(str, args))


def refused(result, *names: str) -> None:
    """Exit 1, one message without a traceback, naming each of `names`."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    for name in names:
        assert name in result.output, (name, result.output)


def copy_part(src: Path, dst: Path, with_sidecar: bool = True) -> Path:
    shutil.copy(src, dst)
    if with_sidecar:
        shutil.copy(sidecar_path(src), sidecar_path(dst))
    return dst


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_ship_dataset, red_channel_model):
    """One tiny model and dataset; the unsharded submission, its 3 shards, shard 1/2, and shard 3/3 of the
    first 18 images only (another image list). Read-only: tests copy what they change."""
    root = tmp_path_factory.mktemp("sharded")
    images = small_ship_dataset(IMAGES) / "train_v2"
    model = save_model(red_channel_model(), root / "model.keras")
    out = {"images": images, "full": root / "full.csv", "outputs": {}}
    predict(model, images, out["full"])
    for i in (1, 2, 3):
        out[i] = root / f"part-{i}.csv"
        out["outputs"][i] = predict(model, images, out[i], "--shard", f"{i}/3").output
    out["half"] = root / "half-1.csv"
    predict(model, images, out["half"], "--shard", "1/2")
    out["fewer"] = root / "fewer-3.csv"
    predict(model, images, out["fewer"], "--shard", "3/3", "--set", "predict.max_images=18")
    return out


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# -- the parts merge into the unsharded submission -------------------------------------------------------

def test_three_shards_merged_equal_the_unsharded_submission_byte_for_byte(runs, tmp_path):
    sizes = [len(lines(runs[i])) - 1 for i in (1, 2, 3)]
    assert all(sizes), "each shard of 24 images holds some"
    images = [json.loads(sidecar_path(runs[i]).read_text())["images"] for i in (1, 2, 3)]
    assert sum(images) == IMAGES
    for i, k in zip((1, 2, 3), images, strict=True):
        assert f"shard {i}/3: {k} of {IMAGES} images" in runs["outputs"][i]
    out = tmp_path / "merged.csv"
    result = merge(runs[3], runs[1], runs[2], "--out", out)
    assert result.exit_code == 0, result.output
    assert f"{IMAGES} images" in result.output and "3 part(s)" in result.output
    assert sorted(lines(out)) == sorted(lines(runs["full"]))
    assert out.read_bytes() == runs["full"].read_bytes()  # folder order is name order, like the merge's
    assert sum(1 for row in lines(out)[1:] if not row.endswith(",")) == IMAGES // 2  # ships were predicted


def test_shards_are_disjoint_cover_and_stable_across_processes():
    ids = [f"{k:09x}.jpg" for k in range(3000)]
    parts = [Shard(i, 3).select([(image_id,) for image_id in ids]) for i in (1, 2, 3)]
    assert sorted(item[0] for part in parts for item in part) == sorted(ids)  # disjoint and covering
    assert all(900 < len(part) < 1100 for part in parts)  # the hash spreads images evenly
    # Pinned: a release that changed the assignment would split reruns of one job differently.
    assert [shard_of(i, 3) for i in ("00003e153.jpg", "0001124c7.jpg", "000155de5.jpg")] == [3, 1, 3]
    code = ("from shiptoolkit.inference.sharding import shard_of; import sys; "
            "print(''.join(str(shard_of(f'{k:09x}.jpg', 3)) for k in range(3000)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert other == "".join(str(shard_of(i, 3)) for i in ids)


@pytest.mark.parametrize("value, expected", [
    ("abc", "not of the form I/N"), ("1-3", "not of the form I/N"), ("1/3/5", "not of the form I/N"),
    ("0/3", "between 1 and 3"), ("4/3", "between 1 and 3"), ("1/0", "at least 1"), ("2/-1", "at least 1")])
def test_bad_shard_values_are_refused_naming_value_and_form(tmp_path, value, expected):
    result = invoke("predict", "--images", str(tmp_path), "--model", str(tmp_path), "--shard", value)
    assert result.exit_code == 2 and "--shard" in result.output, result.output
    assert repr(value) in result.output and expected in result.output and "1/" in result.output
    with pytest.raises(ConfigError, match=expected):
        parse_shard(value)
    assert parse_shard(" 2 / 3 ") == Shard(2, 3)


def test_a_shard_without_out_gets_its_own_file_name(runs, tmp_path, monkeypatch, red_channel_model):
    model = save_model(red_channel_model(), tmp_path / "model.keras")
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", "--model", str(model), "--images", str(runs["images"]), "--set", "data.image_size=64",
                    "--quiet", "--shard", "2/3")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "submission-2-of-3.csv").read_bytes() == runs[2].read_bytes()
    assert json.loads((tmp_path / "submission-2-of-3.shard.json").read_text())["shard"] == 2


def test_merge_without_shard_descriptions_needs_images_folder(runs, tmp_path):
    plain = copy_part(runs["full"], tmp_path / "plain.csv", with_sidecar=False)
    refused(merge(plain, "--out", tmp_path / "a.csv"), "plain.csv", "plain.shard.json", "--images FOLDER")
    result = merge(plain, "--out", tmp_path / "a.csv", "--images", runs["images"], "--size", "64")
    assert result.exit_code == 0, result.output
    assert "every image of" in result.output
    assert (tmp_path / "a.csv").read_bytes() == plain.read_bytes()


def test_existing_out_needs_overwrite_and_out_is_never_an_input(runs, tmp_path):
    parts = [runs[i] for i in (1, 2, 3)]
    out = tmp_path / "sub.csv"
    out.write_text("keep me")
    refused(merge(*parts, "--out", out), "sub.csv", "--overwrite")
    assert out.read_text() == "keep me"
    assert merge(*parts, "--out", out, "--overwrite").exit_code == 0
    assert out.read_bytes() == runs["full"].read_bytes()
    part = copy_part(runs[1], tmp_path / "p1.csv")
    refused(merge(part, runs[2], runs[3], "--out", part, "--overwrite"), "p1.csv", "one of the parts")
    assert part.read_bytes() == runs[1].read_bytes()


# -- refusals: each names the file and the image -----------------------------------------------------------

def test_a_missing_shard_is_refused(runs, tmp_path):
    refused(merge(runs[1], runs[2], "--out", tmp_path / "m.csv"), "shard 3/3 is missing", "--shard 3/3")
    assert not (tmp_path / "m.csv").exists()


def test_a_shard_given_twice_is_refused(runs, tmp_path):
    again = copy_part(runs[2], tmp_path / "again-2.csv")
    refused(merge(runs[1], runs[2], again, runs[3], "--out", tmp_path / "m.csv"), "shard 2/3 is given twice",
            "part-2.csv", "again-2.csv")


def test_parts_of_different_shard_counts_are_refused(runs, tmp_path):
    refused(merge(runs[1], runs[2], runs[3], runs["half"], "--out", tmp_path / "m.csv"), "half-1.csv", "1/2",
            "part-1.csv", "1/3")


def test_parts_predicted_over_different_images_are_refused(runs, tmp_path):
    refused(merge(runs[1], runs[2], runs["fewer"], "--out", tmp_path / "m.csv"), "fewer-3.csv",
            "different images", "24 and 18 images")


def test_an_image_in_the_wrong_shard_is_refused(runs, tmp_path):
    """Shard 2's CSV beside shard 1's description (files mixed up while copying them around)."""
    mixed = tmp_path / "mixed.csv"
    shutil.copy(runs[2], mixed)
    shutil.copy(sidecar_path(runs[1]), sidecar_path(mixed))
    first = lines(runs[2])[1].split(",")[0]
    refused(merge(mixed, runs[2], runs[3], "--out", tmp_path / "m.csv"), "mixed.csv", repr(first),
            "belongs to shard 2/3, not to shard 1/3")


def test_an_image_in_two_parts_is_refused(runs, tmp_path):
    first = lines(runs[1])[1].split(",")[0]
    refused(merge(runs["full"], runs[1], "--out", tmp_path / "m.csv", "--images", runs["images"]),
            repr(first), "full.csv", "part-1.csv", "two parts")


def test_a_part_changed_after_predict_is_refused(runs, tmp_path):
    part = copy_part(runs[1], tmp_path / "p1.csv")
    rows = lines(part)
    ship = next(k for k, row in enumerate(rows) if k and not row.endswith(","))
    rows[ship] = rows[ship].split(",")[0] + ","  # the ship deleted by hand: still a valid submission
    part.write_text("\n".join(rows) + "\n")
    refused(merge(part, runs[2], runs[3], "--out", tmp_path / "m.csv"), "p1.csv", "changed", "--shard 1/3")


def test_malformed_rle_is_refused_naming_file_line_and_image(runs, tmp_path):
    part = copy_part(runs[1], tmp_path / "p1.csv")
    rows = lines(part)
    ship = next(k for k, row in enumerate(rows) if k and not row.endswith(","))
    image_id = rows[ship].split(",")[0]
    rows[ship] = f"{image_id},5 3 9"
    part.write_text("\n".join(rows) + "\n")
    refused(merge(part, runs[2], runs[3], "--out", tmp_path / "m.csv"), "p1.csv", f"line {ship + 1}",
            repr(image_id), "odd number")
    rows[ship] = f"{image_id},4000 200"  # past the 64x64 image the description records
    part.write_text("\n".join(rows) + "\n")
    refused(merge(part, runs[2], runs[3], "--out", tmp_path / "m.csv"), "p1.csv", repr(image_id), "64x64")


def write_images(folder: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"")  # merge only lists the folder's names
    return folder


@pytest.mark.parametrize("rows, expected", [
    (["a.jpg,1 5", "b.jpg,", "a.jpg,5 3"], ["p.csv", "'a.jpg'", "overlap", "lines 2 and 4", "pixel 5"]),
    (["a.jpg,1 5 20 4", "a.jpg,10 5 22 1", "b.jpg,"], ["p.csv", "'a.jpg'", "overlap", "lines 2 and 3", "pixel 22"]),
    (["a.jpg,1 5", "a.jpg,1 5", "b.jpg,"], ["p.csv", "'a.jpg'", "overlap", "lines 2 and 3"]),
    (["a.jpg,1 5", "b.jpg,", "b.jpg,"], ["p.csv", "'b.jpg'", "empty row", "lines 3 and 4"]),
    (["a.jpg,", "a.jpg,1 5", "b.jpg,"], ["p.csv", "'a.jpg'", "empty row", "lines 2 and 3"]),
    (["a.jpg,1 5"], ["1 image(s)", "imgs", "in no part", "b.jpg"]),
    (["a.jpg,1 5", "b.jpg,", "c.jpg,"], ["1 image(s)", "not among", "'c.jpg'", "p.csv"]),
    (["a.jpg", "b.jpg,"], ["p.csv", "line 2", "'a.jpg'", "ImageId,EncodedPixels"]),
])
def test_hand_made_parts_are_checked_row_by_row(tmp_path, rows, expected):
    images = write_images(tmp_path / "imgs", "a.jpg", "b.jpg")
    part = tmp_path / "p.csv"
    part.write_text("ImageId,EncodedPixels\n" + "\n".join(rows) + "\n")
    refused(merge(part, "--out", tmp_path / "m.csv", "--images", images, "--size", "64"), *expected)
    assert not (tmp_path / "m.csv").exists()


def test_a_file_without_the_submission_header_is_refused(tmp_path):
    images = write_images(tmp_path / "imgs", "a.jpg")
    part = tmp_path / "p.csv"
    part.write_text("id,rle\na.jpg,\n")
    refused(merge(part, "--out", tmp_path / "m.csv", "--images", images), "p.csv", "line 1", "'id,rle'",
            "ImageId,EncodedPixels")
