"""Issue 26, data and files: a hostile or careless user's RLEs, run-folder JSON files, image files and file
names give a clear error or a correct result, never a traceback, a silent wrong result or a lost file.

Each test names its repro; the fuzz tests feed any string to the RLE parsers and any JSON to the readers
of a run folder's JSON files (postprocess.json, gate.json, shiptoolkit_export.json, *.shard.json).
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiptoolkit.cli import cli
from shiptoolkit.config import load_config, prepare_config
from shiptoolkit.data.airbus import AirbusIndex, read_rgb
from shiptoolkit.data.hash_cache import FileKey, TileHashCache
from shiptoolkit.data.rle import parse_many, parse_rle, rle_decode, rle_encode
from shiptoolkit.errors import DataError, ShiptoolkitError
from shiptoolkit.inference.exported import MANIFEST, LoadedExport, load_export
from shiptoolkit.inference.gate import load_gate
from shiptoolkit.inference.merging import merge_submissions
from shiptoolkit.inference.prediction import PredictSettings
from shiptoolkit.inference.sharding import read_sidecar
from shiptoolkit.models.saving import save_model
from shiptoolkit.rundir import RunDir
from shiptoolkit.scoring.evaluate import evaluate
from shiptoolkit.training.tuning import describe_tuned

SIDE = 64
FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def invoke(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(result, *names: str, exit_code: int = 1) -> None:
    """The exit code, no traceback, and each of `names` (the bad value, the key, the fix) in the message."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output, result.output
    for name in names:
        assert name in result.output, (name, result.output)


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, allow_nan=True))


@pytest.fixture
def ships(tmp_path, rect_writer):
    """A 64 px dataset of 6 images, 3 of them with one ship each."""
    specs = {f"s{i}.jpg": ([(10, 20, 10 + i, 30 + i)] if i % 2 == 0 else []) for i in range(6)}
    return rect_writer(tmp_path / "ships", specs, size=SIDE)


# -- 1. numbers in RLE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["１００", "1_00", "٣", "+5", "-5", "1e3", "0x10"])
def test_rle_fullwidth_underscored_or_signed_digits_are_a_data_error_in_both_parsers(token):
    """`１００ 2`, `1_00 2` hit `AssertionError: unreachable` in parse_many (parse_rle read them as 100)."""
    with pytest.raises(DataError, match=f"non-integer value '{re.escape(token)}'.*ASCII digits 0-9"):
        parse_rle(f"{token} 2", (SIDE, SIDE))
    with pytest.raises(DataError, match=f"row 1: .*non-integer value '{re.escape(token)}'") as caught:
        parse_many(["1 2", f"{token} 2"], (SIDE, SIDE))
    assert caught.value.row == 1


@pytest.mark.parametrize("rle, value, what", [("99999999999999999999 2", "99999999999999999999", "start"),
                                              ("5 99999999999999999999", "99999999999999999999", "length"),
                                              ("18446744073709551617 1", "18446744073709551617", "start"),
                                              ("4097 1", "4097", "start")])
def test_rle_number_beyond_the_pixel_count_is_refused_naming_value_and_limit(rle, value, what):
    """`99999999999999999999 2` wrapped in int64 and passed every check as a 2-pixel ship."""
    for parse in (lambda: parse_rle(rle, (SIDE, SIDE)), lambda: parse_many(["", rle], (SIDE, SIDE))):
        with pytest.raises(DataError, match=f"RLE value {value} \\({what} of run 1\\).*64x64 image's 4096 pixels"):
            parse()


def test_a_20_digit_rle_start_is_refused_by_data_check_score_and_submission_merge(ships, tmp_path):
    """data check said "no problems", score scored it and submission merge wrote it; training died later."""
    table = ships / "train_ship_segmentations_v2.csv"
    rows = table.read_text().splitlines()
    bad_row = next(i for i, row in enumerate(rows) if i and not row.endswith(","))  # a ship's row
    image_id = rows[bad_row].split(",")[0]
    rows[bad_row] = f"{image_id},99999999999999999999 2"
    table.write_text("\n".join(rows) + "\n")
    names = ("99999999999999999999", image_id, "4096 pixels", "fix or drop this row")
    refused(invoke("data", "check", ships, "--size", SIDE, "--no-images"), *names)
    refused(invoke("score", table, table, "--size", SIDE), *names)
    part = tmp_path / "part.csv"
    part.write_text("\n".join(rows) + "\n")
    refused(invoke("submission", "merge", part, "--out", tmp_path / "merged.csv", "--images", ships / "train_v2",
                   "--size", SIDE), *names)
    assert not (tmp_path / "merged.csv").exists()


def test_rle_benign_variants_still_parse_alike_in_both_parsers():
    """Leading zeros, tabs and newlines are ASCII digits and whitespace: still numbers, in both parsers."""
    rle = "0001 2\t10  3\n4096 1"
    starts, lengths = parse_rle(rle, (SIDE, SIDE))
    many = parse_many([rle, "", rle], (SIDE, SIDE))
    assert starts.tolist() == [0, 9, 4095] and lengths.tolist() == [2, 3, 1]
    assert many[0].tolist() == starts.tolist() * 2 and many[2].tolist() == [0, 0, 0, 2, 2, 2]


# -- 2. run-folder JSON read with checks -------------------------------------------------------------------

DAMAGED = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "holds [1, 2], not a JSON object"),
    ("null", "holds null, not a JSON object"),
    ('{"threshold": "0.5", "min_area": 0}', "'threshold' is \"0.5\", not a number from 0 to 1"),
    ('{"threshold": 0.5, "min_area": "three"}', "'min_area' is \"three\", not a whole number >= 0"),
    ('{"threshold": null, "min_area": 0}', "'threshold' is null, not a number from 0 to 1"),
    ('{"threshold": 0.5}', "the key 'min_area' is missing"),
    ('{"threshold": 0.5, "min_area": 0, "tuned_on": []}', "'tuned_on' is [], not a JSON object"),
]


@pytest.mark.parametrize("text, problem", DAMAGED)
def test_damaged_postprocess_json_is_refused_naming_file_key_value_and_fix(tmp_path, text, problem):
    """Damaged postprocess.json gave JSONDecodeError, UFuncNoLoopError, TypeError or was used as it was."""
    run = RunDir(tmp_path)
    run.postprocess.write_text(text)
    with pytest.raises(ShiptoolkitError) as caught:
        run.read_tuned()
    message = str(caught.value)
    assert str(run.postprocess) in message and problem in message, message
    assert "delete it" in message and "--resume" in message


def test_predict_with_a_damaged_postprocess_json_is_a_clear_cli_error(tmp_path, ships, red_channel_model):
    """`predict --model RUN/best.keras` with postprocess.json's threshold "high": a clear error, no traceback."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    save_model(red_channel_model(), run.best)
    run.postprocess.write_text('{"threshold": "high", "min_area": 0}')
    result = invoke("predict", "--model", run.best, "--images", ships / "train_v2", "--out", tmp_path / "s.csv",
                    "--set", f"data.image_size={SIDE}", "--quiet")
    refused(result, "postprocess.json", "'threshold'", '"high"', "delete it")
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("text, problem", [
    ("[0.5]", "holds [0.5], not a JSON object"),
    ('{"threshold": "0.5"}', "'threshold' is \"0.5\", not a number from 0 to 1"),
    ('{"threshold": 7}', "'threshold' is 7, not a number from 0 to 1"),
    ("\xff\xfe", "not valid JSON"),
])
def test_damaged_gate_json_is_refused_naming_file_key_value_and_fix(tmp_path, text, problem):
    """gate.json ["list"] gave `'list' object has no attribute 'get'`; "0.5" could not convert string to float."""
    run = RunDir(tmp_path)
    run.classifier.write_bytes(b"not read: gate.json is checked first")
    run.gate.write_text(text)
    config = load_config({"classifier": {"name": "cnn_classifier"}})
    with pytest.raises(ShiptoolkitError) as caught:
        load_gate(config, run.path)
    message = str(caught.value)
    assert "gate.json" in message and problem in message and "delete it" in message, message


def manifest(**changes) -> dict:
    """A manifest as `shiptoolkit export` writes it (saved_model, no gate), with `changes` applied."""
    out = {"shiptoolkit_export": 1, "format": "saved_model", "image_size": 64,
           "segmenter": {"file": "segmenter", "input": {"shape": [None, None, None, 3]},
                         "output": {"shape": [None, None, None, 1]}},
           "postprocess": {"threshold": 0.5, "min_area": 0, "split": "none", "whole_image": True}, "gate": None}
    out.update(changes)
    return out


@pytest.mark.parametrize("content, problem", [
    (manifest(segmenter=[]), "'segmenter' is [], not a JSON object"),
    (manifest(image_size="sixty-four"), "'image_size' is \"sixty-four\", not a whole number >= 1"),
    (manifest(segmenter={"file": "s", "input": {"shape": [None, "a"]}, "output": {"shape": [None, 1]}}),
     "'segmenter.input.shape' is [null, \"a\"]"),
    (manifest(postprocess={"threshold": "0.5"}), "'postprocess.threshold' is \"0.5\""),
    (manifest(gate={"file": "c", "image_size": 32, "threshold": None}), "'gate.threshold' is null"),
    (manifest(format="pickle"), "'format' is 'pickle', not one of saved_model"),
])
def test_damaged_export_manifest_is_refused_naming_key_value_and_fix(tmp_path, content, problem):
    """shiptoolkit_export.json with a list segmenter, a text size or a null threshold gave raw tracebacks."""
    (tmp_path / MANIFEST).write_text(json.dumps(content))
    with pytest.raises(ShiptoolkitError) as caught:
        load_export(tmp_path)
    message = str(caught.value)
    assert MANIFEST in message and problem in message and "export the run again" in message, message


SIDECAR = {"shiptoolkit_shard": 1, "shard": 1, "of": 1, "images": 1, "total_images": 1,
           "image_list_sha256": "0" * 64, "image_size": SIDE, "submission_sha256": "0" * 64}


@pytest.mark.parametrize("change, problem", [
    ({"of": "three"}, "'of' is \"three\", not a whole number >= 1"),
    ({"shard": None}, "'shard' is null"),
    ({"image_size": 0}, "'image_size' is 0"),
    ({"shard": 2, "of": 1}, "'shard' 2 is above its 'of' 1"),
    ({"submission_sha256": ["x"]}, "'submission_sha256' is [\"x\"], not a string"),
])
def test_damaged_shard_json_is_refused_by_merge_naming_file_key_value_and_fix(tmp_path, change, problem):
    """A *.shard.json with "of": "three" gave `int() ... 'three'`; a null shard a NoneType traceback."""
    part = tmp_path / "part.csv"
    part.write_text("ImageId,EncodedPixels\na.jpg,\n")
    (tmp_path / "part.shard.json").write_text(json.dumps({**SIDECAR, **change}))
    refused(invoke("submission", "merge", part, "--out", tmp_path / "merged.csv"), "part.shard.json", problem,
            "rerun that shard's predict")


FOLD_METRICS = {"metrics": {"images": 1, "f2": 1.0, "f2_all_empty_baseline": 1.0, "f2_prior_weighted": 1.0,
                            "false_positive_rate_empty": 0.0, "f2_ship_images": 1.0},
                "per_image": [{"ImageId": "a.jpg", "f2": 1.0, "true_ships": 0, "pred_ships": 0}]}


@pytest.mark.parametrize("change, problem", [
    ({"metrics": []}, "'metrics' is [], not a JSON object"),
    ({"per_image": [{"ImageId": "a.jpg", "f2": "1"}]}, "(per_image row 0) is damaged: its 'f2' is \"1\""),
    ({"per_image": {"a": 1}}, "'per_image' is {\"a\": 1}, not a list of JSON objects"),
])
def test_damaged_fold_metrics_json_is_refused_by_the_cv_summary_naming_key_and_resume(tmp_path, change, problem):
    """A cross-validation fold's metrics.json with a list for 'metrics' gave a raw traceback in `cv --resume`."""
    from shiptoolkit.cv import summarize

    fold = RunDir(tmp_path / "fold0")
    fold.path.mkdir()
    write_json(fold.metrics, FOLD_METRICS)
    assert summarize(tmp_path, [fold.path], 0.779).mean["f2"] == 1.0  # as the fold wrote it: summarised
    write_json(fold.metrics, {**FOLD_METRICS, **change})
    with pytest.raises(ShiptoolkitError) as caught:
        summarize(tmp_path, [fold.path], 0.779)
    message = str(caught.value)
    assert "metrics.json" in message and problem in message and f"cv --resume {tmp_path}" in message, message


# -- 3. fuzz: any string as an RLE, any JSON in a run folder's files ---------------------------------------

NUMBERS = st.lists(st.one_of(st.integers(-3, 4200).map(str), st.integers(0, 10**25).map(str),
                             st.sampled_from(["１", "_", "+", "-", "٣", "0", "\t", "\u3000", "1.5", "e"])),
                   max_size=8).map(" ".join)


@FUZZ
@given(text=st.one_of(st.text(max_size=40), NUMBERS))
def test_fuzz_any_string_as_rle_is_a_mask_or_a_data_error_and_both_parsers_agree(text):
    try:
        starts, lengths = parse_rle(text, (SIDE, SIDE))
    except DataError:
        with pytest.raises(DataError):
            parse_many(["1 1", text], (SIDE, SIDE))
        return
    assert ((starts >= 0) & (lengths > 0) & (starts + lengths <= SIDE * SIDE)).all()
    many_starts, many_lengths, owner = parse_many(["1 1", text], (SIDE, SIDE))
    assert many_starts[owner == 1].tolist() == starts.tolist() and many_lengths[owner == 1].tolist() == lengths.tolist()
    assert rle_decode(text, (SIDE, SIDE)).sum() == lengths.sum()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)


def mutated(example: dict) -> st.SearchStrategy:
    """`example` with some keys (nested ones too) replaced by any JSON value or dropped; or any JSON at all."""
    def mutate(draw_keys):
        out = json.loads(json.dumps(example))
        for path, value in draw_keys:
            target = out
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict):
                target.pop(path[-1], None) if value == "<drop>" else target.__setitem__(path[-1], value)
        return out

    paths = [(key,) for key in example] + [(k, sub) for k, v in example.items() if isinstance(v, dict) for sub in v]
    change = st.tuples(st.sampled_from(paths), JSON | st.just("<drop>"))
    return st.one_of(st.lists(change, min_size=1, max_size=3).map(mutate), JSON)


TUNED = {"threshold": 0.5, "min_area": 0, "classifier_threshold": None, "f2": 0.5, "f2_with_defaults": 0.4,
         "f2_all_empty_baseline": 0.5, "tuned_on": {"images": 8, "empty_images": 4}, "split_depth": 1.5,
         "whole_image": True, "max_ships": 0}


@FUZZ
@given(value=mutated(TUNED))
def test_fuzz_any_json_in_postprocess_json_is_a_result_or_a_shiptoolkit_error(tmp_path, value):
    run = RunDir(tmp_path)
    write_json(run.postprocess, value)
    try:
        tuned = run.read_tuned()
    except ShiptoolkitError:
        return
    describe_tuned(tuned)  # the run's summary line
    settings = PredictSettings.from_config(load_config({}), tuned)
    settings.labels(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16))


@FUZZ
@given(value=mutated({"classifier": "cnn_classifier", "threshold": 0.5, "image_size": 32, "tuned_in": None}))
def test_fuzz_any_json_in_gate_json_is_a_result_or_a_shiptoolkit_error(tmp_path, value):
    run = RunDir(tmp_path)
    write_json(run.gate, value)
    run.classifier.write_bytes(b"")  # an empty classifier.keras: refused as a model file once gate.json passes
    try:
        load_gate(load_config({"classifier": {"name": "cnn_classifier"}}), run.path)
    except ShiptoolkitError:
        pass


@FUZZ
@given(value=mutated(manifest(gate={"file": "c", "image_size": 32, "threshold": 0.5,
                                    "input": {"shape": [None, 32, 32, 3]}, "output": {"shape": [None, 1]}})))
def test_fuzz_any_json_in_the_export_manifest_is_a_result_or_a_shiptoolkit_error(tmp_path, value):
    write_json(tmp_path / MANIFEST, value)
    try:
        load_export(tmp_path)  # its segmenter file is missing: refused once the manifest passes
    except ShiptoolkitError as exc:
        if "is incomplete" not in str(exc):  # else: the manifest passed, its segmenter file is missing
            return
    loaded = LoadedExport(tmp_path, value, None)
    try:
        prepare_config({}, loaded.config_overrides())  # what predict --model EXPORT does with it
    except ShiptoolkitError:
        pass


@FUZZ
@given(value=mutated(SIDECAR))
def test_fuzz_any_json_in_a_shard_json_is_a_result_or_a_shiptoolkit_error(tmp_path, value):
    part = tmp_path / "part.csv"
    part.write_text("ImageId,EncodedPixels\na.jpg,\n")
    write_json(tmp_path / "part.shard.json", value)
    try:
        read_sidecar(part)
        merge_submissions([part], tmp_path / "merged.csv", overwrite=True)
    except ShiptoolkitError:
        pass


# -- 4. silent: skipped test images, 3-D masks, images that are not 8-bit colour ---------------------------

def test_an_unreadable_test_image_with_on_error_skip_is_not_scored_and_is_listed_in_skipped_csv(
        tmp_path, ships, red_channel_model):
    """A 0-byte empty test image with data.on_error=skip scored as a correct empty prediction (f2 1.0)."""
    (ships / "train_v2" / "s1.jpg").write_bytes(b"")  # an image without ships: predicting nothing scored 1.0
    config = load_config({"data": {"image_size": SIDE, "on_error": "skip"}})
    index = AirbusIndex.from_kaggle(ships, shape=(SIDE, SIDE))
    model = save_model(red_channel_model(), tmp_path / "model.keras")
    with pytest.warns(UserWarning, match="1 unreadable image"):
        result = evaluate(config, model, run_dir=tmp_path, index=index, progress=False,
                          submission=tmp_path / "submission.csv")
    assert result.metrics["images"] == 5 and result.metrics["skipped_images"] == 1
    assert "s1.jpg" not in [row["ImageId"] for row in result.per_image]
    assert "not scored: 1 unreadable image(s)" in result.table() and "s1.jpg" in result.table()
    with (tmp_path / "skipped.csv").open() as handle:
        assert [row["ImageId"] for row in csv.DictReader(handle)] == ["s1.jpg"]
    assert "s1.jpg," in (tmp_path / "submission.csv").read_text()  # the submission still has its (empty) row


@pytest.mark.parametrize("shape", [(8, 8, 1), (8, 8, 3), (64,), ()])
def test_rle_encode_of_a_mask_that_is_not_2d_is_refused_naming_its_shape(shape):
    """rle_encode of an (H, W, 3) mask flattened it into runs that are no pixels of the image."""
    with pytest.raises(DataError, match=re.escape(f"2-D (height, width) mask; got an array of shape {shape}")):
        rle_encode(np.ones(shape, np.uint8))


def test_grey_rgba_and_16bit_pngs_named_jpg_are_converted_to_rgb_with_one_warning_each(tmp_path):
    """Grey, RGBA-PNG and 16-bit-PNG files named .jpg were read without a word; now converted, said once."""
    grey = np.tile(np.arange(SIDE, dtype=np.uint8) * 3, (SIDE, 1))
    bgra = np.dstack([np.full((SIDE, SIDE), v, np.uint8) for v in (10, 20, 30, 0)])  # alpha 0 everywhere
    deep = grey.astype(np.uint16) * 257 + 1  # 16-bit: / 256 gives the 8-bit grey back
    files = {"grey.jpg": (".png", grey), "grey2.jpg": (".jpg", grey), "rgba.jpg": (".png", bgra),
             "deep.jpg": (".png", deep), "plain.jpg": (".jpg", np.dstack([grey] * 3))}
    for name, (fmt, image) in files.items():
        (tmp_path / name).write_bytes(cv2.imencode(fmt, image)[1].tobytes())
    from shiptoolkit.data import image_formats  # new in issue 26: imported here, so the other tests run without it

    image_formats.conversions(reset=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = {name: read_rgb(tmp_path / name, (SIDE, SIDE)) for name in files}
    said = [str(w.message) for w in caught if "not an 8-bit colour image" in str(w.message)]
    assert len(said) == 3 and all(image.shape == (SIDE, SIDE, 3) for image in images.values()), said
    assert "grey.jpg" in said[0] and "(grey)" in said[0] and "grey copied to R, G and B" in said[0]
    assert np.array_equal(images["grey.jpg"][..., 1], grey) and np.array_equal(images["deep.jpg"][..., 0], grey)
    assert images["rgba.jpg"][0, 0].tolist() == [30, 20, 10]  # RGB, alpha dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: a file read again (each epoch) is neither said nor counted again
        read_rgb(tmp_path / "grey.jpg", (SIDE, SIDE))
    report = image_formats.conversions(reset=True)
    assert report.startswith("converted 4 image file(s)") and "2 grey (e.g." in report and "1 alpha" in report
    assert "1 grey 16-bit" in report and "plain.jpg" not in report


# -- 5. lost files: a user's u.shard.json, a user's file as data.group_cache ------------------------------

def test_predict_shard_refuses_to_replace_a_users_file_named_like_its_shard_json(tmp_path, ships, red_channel_model):
    """`predict --out u.csv --shard 1/1` replaced an existing user file u.shard.json."""
    model = save_model(red_channel_model(), tmp_path / "model.keras")
    user_file = tmp_path / "u.shard.json"
    user_file.write_text("my notes, not JSON\n")
    args = ("predict", "--model", model, "--images", ships / "train_v2", "--out", tmp_path / "u.csv", "--shard",
            "1/1", "--set", f"data.image_size={SIDE}", "--quiet")
    refused(invoke(*args), "u.shard.json", "is not a shard description", "choose another --out")
    assert user_file.read_text() == "my notes, not JSON\n" and not (tmp_path / "u.csv").exists()
    user_file.unlink()
    assert invoke(*args).exit_code == 0  # its own shard description it replaces, with --overwrite
    result = invoke(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads(user_file.read_text())["shiptoolkit_shard"] == 1


def test_group_cache_naming_a_users_file_leaves_it_untouched(tmp_path):
    """`data.group_cache=notes.txt` turned the user's text file into SQLite ("damaged: starting it anew")."""
    notes, other = tmp_path / "notes.txt", tmp_path / "other.db"
    notes.write_text("my notes\n")
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    db.close()
    before = other.read_bytes()
    for path, why in ((notes, "it is no SQLite file"), (other, "SQLite database of something else (tables people)")):
        with pytest.warns(UserWarning, match="left untouched") as caught:
            with TileHashCache(path, "params", 2) as cache:
                cache.store([(FileKey("/a.jpg", 1, 2), [b"ab", None])])
                assert cache.lookup([FileKey("/a.jpg", 1, 2)]) == [None]
        message = str(caught[0].message)
        assert str(path) in message and why in message and 'data.group_cache' in message
    assert notes.read_text() == "my notes\n" and other.read_bytes() == before


# -- 6. unclear: --size 0 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [("score", "SUB", "SUB"), ("data", "check", "DIR")])
@pytest.mark.parametrize("size", ["0", "-5"])
def test_score_and_data_check_name_size_when_it_is_not_positive(tmp_path, command, size):
    """`score --size 0/-5` and `data check --size 0` never named --size."""
    sub = tmp_path / "s.csv"
    sub.write_text("ImageId,EncodedPixels\na.jpg,1 2\n")
    args = [{"SUB": sub, "DIR": tmp_path}.get(a, a) for a in command]
    refused(invoke(*args, "--size", size), "--size", size, "x>=1", exit_code=2)
