import numpy as np
import pytest

from shiptoolkit.data.airbus import AirbusIndex, read_rgb
from shiptoolkit.errors import DataError


def test_index_groups_rows_and_decodes_lazily(rect_dataset):
    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96))
    assert len(index) == 12
    assert len(index.ship_ids) == 4 and len(index.empty_ids) == 8
    mask = index.mask("img00.jpg")
    assert mask.shape == (96, 96) and mask[10:30, 20:60].all() and mask.sum() == 20 * 40
    image = index.read_image("img00.jpg")
    assert image.shape == (96, 96, 3) and image[15, 30].mean() > 150  # the drawn ship


def test_unsafe_ids_raise_or_skip(tmp_path):
    rows = [("../etc/passwd", ""), ("a/b.jpg", ""), ("ok.jpg", "")]
    with pytest.raises(DataError, match="contains '..'"):
        AirbusIndex.from_rows(rows, tmp_path)
    with pytest.warns(UserWarning, match="Skipped 2 image"):
        index = AirbusIndex.from_rows(rows, tmp_path, on_error="skip")
    assert index.image_ids == ["ok.jpg"]
    assert {p.kind for p in index.problems} == {"unsafe_id"}


def test_validate_reports_bad_rle_and_missing_images(rect_dataset):
    csv = rect_dataset / "train_ship_segmentations_v2.csv"
    csv.write_text(csv.read_text() + "img00.jpg,5 x\nghost.jpg,\n")
    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96))
    with pytest.raises(DataError, match="img00.jpg.*non-integer"):
        index.validate()
    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96), on_error="skip")
    with pytest.warns(UserWarning, match="1 bad_rle, 1 missing_image"):
        problems = index.validate()
    assert {p.image_id for p in problems} == {"img00.jpg", "ghost.jpg"}
    assert "img00.jpg" not in index and len(index) == 11


def test_corrupt_and_wrong_size_images(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="not a readable image"):
        read_rgb(bad)
    with pytest.raises(DataError, match="not found"):
        read_rgb(tmp_path / "missing.jpg")
    import cv2

    cv2.imwrite(str(tmp_path / "small.jpg"), np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(DataError, match="12x10; expected 768x768"):
        read_rgb(tmp_path / "small.jpg")


def test_missing_columns(tmp_path):
    (tmp_path / "x.csv").write_text("Id,Pixels\na,1 2\n")
    with pytest.raises(DataError, match="lacks column"):
        AirbusIndex.from_csv(tmp_path / "x.csv", tmp_path)


def test_validate_names_every_broken_image_past_the_vectorised_pass(tmp_path, monkeypatch):
    from shiptoolkit.data import airbus

    monkeypatch.setattr(airbus, "PARSE_CHUNK", 2)  # several chunks, the broken ones in later chunks
    good = [(f"ok{i}.jpg", f"{1 + 100 * i} 5") for i in range(5)] + [("ok0.jpg", "900 3"), ("empty.jpg", "")]
    bad = [("odd.jpg", "1 2 3"), ("overlap.jpg", "10 5 12 3"), ("past.jpg", "9210 10"), ("text.jpg", "5 x")]
    rows = good[:3] + bad[:2] + good[3:] + bad[2:]
    index = AirbusIndex.from_rows(rows, tmp_path, on_error="skip", shape=(96, 96))
    with pytest.warns(UserWarning, match="Skipped 4 image.*4 bad_rle"):
        problems = index.validate(check_images=False, check_files=False)
    assert [p.image_id for p in problems] == ["odd.jpg", "overlap.jpg", "past.jpg", "text.jpg"]
    assert "odd number" in problems[0].message and "overlap" in problems[1].message
    assert index.image_ids == ["ok0.jpg", "ok1.jpg", "ok2.jpg", "ok3.jpg", "ok4.jpg", "empty.jpg"]
    assert AirbusIndex.from_rows(good, tmp_path, shape=(96, 96)).validate(check_images=False, check_files=False) == []
