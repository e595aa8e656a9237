import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.data.rle import rle_encode
from shiptoolkit.errors import DataError
from shiptoolkit.scoring.submission import score_submission

SHAPE = (20, 20)


def rle(r0, r1, c0, c1):
    mask = np.zeros(SHAPE, np.uint8)
    mask[r0:r1, c0:c1] = 1
    return rle_encode(mask)


A, B = rle(0, 4, 0, 5), rle(10, 14, 10, 15)
TRUTH = pd.DataFrame({"ImageId": ["one", "two", "two", "empty1", "empty2"], "EncodedPixels": [A, A, B, "", ""]})


def frame(rows):
    return pd.DataFrame(rows, columns=["ImageId", "EncodedPixels"])


def test_perfect_submission_and_baseline():
    result = score_submission(TRUTH, TRUTH, shape=SHAPE)
    assert result.f2 == 1.0 and result.f2_all_empty_baseline == 0.5  # 2 of 4 images have no ship
    assert result.summary["true_ships"] == result.summary["pred_ships"] == 3


def test_mixed_cases_hand_computed():
    sub = frame([("one", A), ("two", A), ("empty1", B), ("empty2", "")])
    # one: 1; two: one of two found = 5/9; empty1: FP on empty sea = 0; empty2: 1
    result = score_submission(sub, TRUTH, shape=SHAPE)
    assert result.f2 == pytest.approx((1 + 5 / 9 + 0 + 1) / 4)
    per = result.per_image.set_index("ImageId")
    assert per.loc["two", "fn_at_0.5"] == 1 and per.loc["empty1", "fp_at_0.5"] == 1 and per.loc["empty1", "empty"]
    assert result.summary["false_positive_rate_empty"] == 0.5


def test_predicted_nothing_scores_the_baseline():
    sub = frame([(i, "") for i in ["one", "two", "empty1", "empty2"]])
    result = score_submission(sub, TRUTH, shape=SHAPE)
    assert result.f2 == result.f2_all_empty_baseline == 0.5


@pytest.mark.parametrize("rows, match", [
    ([("one", A), ("two", A)], "missing from the submission"),
    ([("one", A), ("two", A), ("empty1", ""), ("empty2", ""), ("stranger", "")], "not in the truth"),
    ([("one", A), ("one", A), ("two", A), ("empty1", ""), ("empty2", "")], "duplicate row"),
    ([("one", A), ("one", rle(2, 6, 0, 5)), ("two", A), ("empty1", ""), ("empty2", "")], "overlapping predicted"),
])
def test_validation_errors_and_lenient(rows, match):
    with pytest.raises(DataError, match=match):
        score_submission(frame(rows), TRUTH, shape=SHAPE)
    with pytest.warns(UserWarning, match=match):
        result = score_submission(frame(rows), TRUTH, lenient=True, shape=SHAPE)
    assert 0 <= result.f2 <= 1 and result.summary["images"] == 4


def test_lenient_missing_images_score_as_empty():
    with pytest.warns(UserWarning):
        result = score_submission(frame([("one", A)]), TRUTH, lenient=True, shape=SHAPE)
    assert result.f2 == pytest.approx((1 + 0 + 1 + 1) / 4)


def test_malformed_rle_names_line_and_image():
    sub = frame([("one", A), ("two", "5 x"), ("empty1", ""), ("empty2", "")])
    with pytest.raises(DataError, match="submission CSV line 3 \\(ImageId 'two'\\): .*non-integer"):
        score_submission(sub, TRUTH, shape=SHAPE, lenient=True)


def test_cli(tmp_path):
    TRUTH.to_csv(tmp_path / "truth.csv", index=False)
    frame([("one", A), ("two", A), ("empty1", ""), ("empty2", "")]).to_csv(tmp_path / "sub.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["score", str(tmp_path / "sub.csv"), str(tmp_path / "truth.csv"), "--size", "20",
                                 "--per-image", str(tmp_path / "per.csv")])
    assert result.exit_code == 0, result.output
    assert f"f2: {(1 + 5 / 9 + 2) / 4:.6f}" in result.output and "all-empty baseline f2: 0.500000" in result.output
    assert len(pd.read_csv(tmp_path / "per.csv")) == 4
    frame([("one", A)]).to_csv(tmp_path / "bad.csv", index=False)
    bad = runner.invoke(cli, ["score", str(tmp_path / "bad.csv"), str(tmp_path / "truth.csv"), "--size", "20"])
    assert bad.exit_code == 1 and "missing from the submission" in bad.output and "Traceback" not in bad.output
    lenient = runner.invoke(cli, ["score", str(tmp_path / "bad.csv"), str(tmp_path / "truth.csv"), "--size", "20",
                                  "--lenient", "--json"])
    assert lenient.exit_code == 0 and json.loads(lenient.output)["f2"] == pytest.approx(0.75)
