"""Reliability of config loading and of the CLI's file writes: each test names the repro it guards.

Cases: run names that are paths, component parameters checked by type and range at load (so
`--dry-run` catches them), config files that are not UTF-8, `score --per-image` clobbering a file,
and unwritable output folders shown as a traceback.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.config import load_config
from shiptoolkit.data.rle import rle_encode
from shiptoolkit.errors import ConfigError


def assert_clean_failure(result, *expected: str) -> None:
    """Exit 1, one message without traceback (click's SystemExit, not the raw exception), naming `expected`."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    for text in expected:
        assert text in result.output, f"{text!r} not in {result.output!r}"


@pytest.fixture
def config_file(tmp_path):
    """A minimal experiment file whose runs go under tmp_path/runs."""
    path = tmp_path / "x.toml"
    path.write_text(f'[run]\nname = "x"\nout_dir = "{(tmp_path / "runs").as_posix()}"\n', encoding="utf-8")
    return path


# --- 1. run.name is a folder name, never a path ------------------------------------------------

@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "a\\b", "/abs", "two\nlines"])
def test_run_name_that_is_a_path_is_a_config_error(name, tmp_path):
    """`--set run.name=../escape` (or "a/b", "..", "", a backslash) made the run dir outside run.out_dir."""
    with pytest.raises(ConfigError) as err:
        load_config({"run": {"name": name, "out_dir": str(tmp_path / "runs")}}, check_components=False)
    message = str(err.value)
    assert f"run.name={name!r}" in message and "plain folder name" in message and "no path separators" in message


def test_plain_run_names_still_load():
    """Names with letters, digits, '-', '_' and '.' keep working (the rejection above is not too broad)."""
    for name in ("quickstart", "exp-1.2_b", "café"):
        assert load_config({"run": {"name": name}}, check_components=False)["run"]["name"] == name
    with pytest.raises(ConfigError, match="plain folder name"):  # and the repro is refused
        load_config({"run": {"name": "../escape"}}, check_components=False)


def test_cli_dry_run_rejects_run_name_escape(config_file, tmp_path):
    """`shiptoolkit run x.toml --dry-run --set run.name=../escape` exits 1 cleanly, naming value and fix."""
    result = CliRunner().invoke(cli, ["run", str(config_file), "--dry-run", "--set", "run.name=../escape"])
    assert_clean_failure(result, "'../escape'", "run.name", "plain folder name")
    assert not (tmp_path / "escape").exists()


# --- 2. component parameters: type and range at load, sampler size vs data.image_size -----------

@pytest.mark.parametrize("line, expected", [
    ('depth = "two"', ["backbone 'unet'", "depth must be of type int, got str 'two'"]),
    ("depth = -3", ["backbone 'unet'", "depth must be in [1, 8], got -3"]),
    ("depth = 2.0", ["depth must be of type int, got float 2.0"]),
    ("base_filters = 0", ["base_filters must be >= 1, got 0"]),
    ("dropout = 1.0", ["dropout must be in [0.0, 1.0), got 1.0"]),
])
def test_cli_dry_run_catches_bad_backbone_parameters(config_file, line, expected):
    """`backbone.depth = "two"` / `-3` passed `run --dry-run` and failed later with a traceback."""
    config_file.write_text(config_file.read_text() + f'[backbone]\nname = "unet"\n{line}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(config_file), "--dry-run"])
    assert_clean_failure(result, "[backbone]", *expected)


def test_cli_dry_run_catches_patch_size_larger_than_image(config_file):
    """`sampler.patch_size = 1000` with data.image_size 768 passed `--dry-run`; now both keys are named."""
    result = CliRunner().invoke(cli, ["run", str(config_file), "--dry-run", "--set", "sampler.patch_size=1000"])
    assert_clean_failure(result, "sampler.patch_size = 1000", "data.image_size = 768", "at most 768")


@pytest.mark.parametrize("sampler, key", [("mixed", "patch_size"), ("ship_patches", "patch_size"),
                                          ("full_images", "size")])
def test_sampler_side_larger_than_data_image_size_is_a_config_error(sampler, key):
    """A sampler side bigger than data.image_size (patch_size; `size` for full_images) fails at load."""
    assert load_config({"data": {"image_size": 256}, "sampler": {"name": sampler, key: 256}})  # equal is fine
    with pytest.raises(ConfigError, match=rf"sampler\.{key} = 300 is larger than data\.image_size = 256"):
        load_config({"data": {"image_size": 256}, "sampler": {"name": sampler, key: 300}})


@pytest.mark.parametrize("section, params, match", [
    ("backbone", {"name": "unet", "depth": True}, "depth must be of type int, got bool True"),
    ("backbone", {"name": "unet", "batch_norm": 1}, "batch_norm must be of type bool, got int 1"),
    ("backbone", {"name": "resnet34_unet", "decoder_filters": [256, 128, 64, 32, 0]},
     r"every item of decoder_filters must be >= 1, got \[256, 128, 64, 32, 0\]"),
    ("backbone", {"name": "resnet34_unet", "decoder_filters": ["a", 1, 1, 1, 1]}, "decoder_filters must be of type"),
    ("backbone", {"name": "resnet34_unet", "encoder_weights": 3}, r"encoder_weights must be of type str \| None"),
    ("sampler", {"name": "mixed", "ship_fraction": 1.5}, r"ship_fraction must be in \[0.0, 1.0\], got 1.5"),
    ("sampler", {"name": "mixed", "patch_size": 4}, "patch_size must be >= 8, got 4"),
    ("sampler", {"name": "mixed", "patches_per_image": 0}, "patches_per_image must be >= 1"),
    ("sampler", {"name": "full_images", "size": 5}, "size must be 0 or >= 8, got 5"),
    ("sampler", {"name": "full_images", "empty_fraction": 1.0}, r"empty_fraction must be < 1.0"),
    ("loss", {"name": "dice", "smooth": 0}, r"smooth must be > 0.0, got 0"),
    ("loss", {"name": "focal", "alpha": 2}, r"alpha must be in \[0.0, 1.0\], got 2"),
    ("loss", {"name": "bce_dice", "bce_weight": -1}, "bce_weight must be >= 0.0, got -1"),
    ("classifier", {"name": "cnn_classifier", "depth": 0}, "depth must be >= 1, got 0"),
    ("classifier", {"name": "resnet18_classifier", "dropout": "0.2"}, "dropout must be of type float, got str"),
])
def test_component_parameters_are_type_and_range_checked_at_load(section, params, match):
    """Bad types (bool is not an int) and out-of-range values of built-ins fail at load, naming the component."""
    with pytest.raises(ConfigError, match=match) as err:
        load_config({section: params})
    assert f"[{section}] {section} {params['name']!r}:" in str(err.value)


def test_lenient_types_still_load_int_for_float_list_for_tuple():
    """int is accepted for float and a list for a tuple (TOML has no tuples); bool is not an int."""
    config = load_config({"backbone": {"name": "resnet34_unet", "decoder_filters": [64, 32, 16, 8, 4]},
                          "loss": {"name": "focal", "gamma": 2}, "sampler": {"name": "full_images", "size": 0}})
    assert config.get("backbone.decoder_filters") == [64, 32, 16, 8, 4] and config.get("loss.gamma") == 2
    with pytest.raises(ConfigError, match="must be of type int, got bool"):
        load_config({"sampler": {"name": "mixed", "patch_size": True}})


def test_param_ranges_decorator_for_plugin_authors():
    """Plugin authors attach ranges with `@param_ranges`; check_params enforces them and Param shows them."""
    from shiptoolkit.plugins.registry import Range, Registry, param_ranges

    @param_ranges(depth=(1, 8), rate=Range(0.0, 1.0, high_open=True))
    def net(depth: int = 4, rate: float = 0.1, name: str | None = None, shape: tuple[int, ...] = (1, 2)):
        """A net."""

    reg = Registry("backbone")
    reg.register("net", net)
    reg.check_params("net", {"depth": 8, "rate": 0, "name": None, "shape": [3, 4]})  # bounds inclusive, int for float
    for params, match in [({"depth": 9}, r"backbone 'net': depth must be in \[1, 8\], got 9\."),
                          ({"rate": 1.0}, r"rate must be in \[0.0, 1.0\), got 1.0"),
                          ({"depth": "two"}, "backbone 'net': depth must be of type int, got str 'two'."),
                          ({"name": 3}, r"name must be of type str \| None, got int 3"),
                          ({"shape": [1, "x"]}, r"shape must be of type tuple\[int, \.\.\.\]")]:
        with pytest.raises(ConfigError, match=match):
            reg.check_params("net", params)
    shown = {p.name: p.to_dict()["range"] for p in reg.get("net").params}
    assert shown == {"depth": "in [1, 8]", "rate": "in [0.0, 1.0)", "name": None, "shape": None}
    with pytest.raises(TypeError, match="has no parameter"):  # a typo in the decorator is caught at import
        param_ranges(dept=(1, 8))(net)


def test_unknown_annotations_are_not_checked():
    """Complex or missing annotations are left alone (no false alarms on plugin components)."""
    from shiptoolkit.plugins.registry import Registry, param_ranges

    reg = Registry("loss")
    reg.register("free", lambda scale=1.0, edges=(1, 2): scale)

    def seq(edges: "Sequence[int]" = (1,), any_value: "Any" = None):  # noqa: F821
        """Seq."""

    reg.register("seq", seq)
    reg.check_params("free", {"scale": "anything", "edges": "x"})
    reg.check_params("seq", {"edges": [1, 2], "any_value": object()})
    assert reg.get("seq").params[0].to_dict()["range"] is None
    param_ranges(scale=(0, None))(reg.get("free").factory)  # ranges apply even without annotations
    with pytest.raises(ConfigError, match="scale must be >= 0, got -1"):
        reg.check_params("free", {"scale": -1})


def test_components_command_shows_ranges():
    """`shiptoolkit components` lists each parameter's range (text and JSON), from the same registry."""
    result = CliRunner().invoke(cli, ["components", "backbone", "--json"])
    assert result.exit_code == 0, result.output
    unet = next(c for c in json.loads(result.output)["backbone"] if c["name"] == "unet")
    ranges = {p["name"]: p["range"] for p in unet["params"]}
    assert ranges["depth"] == "in [1, 8]" and ranges["dropout"] == "in [0.0, 1.0)" and ranges["batch_norm"] is None
    text = CliRunner().invoke(cli, ["components", "sampler"]).output
    assert "patch_size: int (default 128; >= 8)" in text and "size: int (default 0; 0 or >= 8)" in text


# --- 3. config files that are not UTF-8 ---------------------------------------------------------

@pytest.mark.parametrize("content", [b"\xff\xfe[run]\n", "[run]\nname = 'caf\xe9'\n".encode("latin-1")],
                         ids=["utf16-bom", "latin-1"])
def test_non_utf8_config_is_a_config_error(tmp_path, content):
    """A config saved as UTF-16 or latin-1 raised UnicodeDecodeError with a traceback."""
    path = tmp_path / "legacy.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "not UTF-8" in str(err.value) and "Save it as UTF-8" in str(err.value)
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert_clean_failure(result, "legacy.toml", "not UTF-8", "Save it as UTF-8")


def test_utf8_config_with_bom_loads(tmp_path):
    """A UTF-8 file with a byte-order mark (Windows editors) loads instead of failing as invalid TOML."""
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[run]\nname = 'café'\n".encode())
    assert load_config(path, check_components=False)["run"]["name"] == "café"


# --- 4. score --per-image never clobbers a file silently -----------------------------------------

def _score_files(tmp_path: Path) -> tuple[Path, Path]:
    mask = np.zeros((20, 20), np.uint8)
    mask[2:6, 3:9] = 1
    rows = pd.DataFrame({"ImageId": ["a", "b"], "EncodedPixels": [rle_encode(mask), ""]})
    rows.to_csv(tmp_path / "truth.csv", index=False)
    rows.to_csv(tmp_path / "sub.csv", index=False)
    return tmp_path / "sub.csv", tmp_path / "truth.csv"


def test_score_per_image_refuses_to_overwrite(tmp_path):
    """`shiptoolkit score SUB TRUTH --per-image keep.csv` silently overwrote an existing keep.csv."""
    sub, truth = _score_files(tmp_path)
    keep = tmp_path / "keep.csv"
    keep.write_text("precious\n")
    args = ["score", str(sub), str(truth), "--size", "20", "--per-image", str(keep)]
    result = CliRunner().invoke(cli, args)
    assert_clean_failure(result, str(keep), "exists", "--overwrite")
    assert keep.read_text() == "precious\n"
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(keep)) == 2


def test_score_per_image_never_replaces_an_input(tmp_path):
    """`--per-image TRUTH --overwrite` would destroy the ground truth being scored: refused."""
    sub, truth = _score_files(tmp_path)
    before = truth.read_text()
    result = CliRunner().invoke(cli, ["score", str(sub), str(truth), "--size", "20", "--per-image", str(truth),
                                      "--overwrite"])
    assert_clean_failure(result, str(truth), "input files")
    assert truth.read_text() == before


# --- 5. unwritable output folders: a message, not a PermissionError traceback --------------------

@pytest.fixture
def readonly_dir(tmp_path, monkeypatch):
    """A folder nothing can be written into: chmod 0o555, or (as root, where chmod does not bind)
    `Path.mkdir` / `Path.open` for writing raise PermissionError(13, ...) inside it."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real_mkdir, real_open = Path.mkdir, Path.open

        def inside(path) -> bool:
            return Path(os.path.abspath(path)).is_relative_to(folder)

        def mkdir(self, *args, **kwargs):
            if inside(self) and not self.is_dir():
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        def open_(self, mode="r", *args, **kwargs):
            if inside(self) and any(c in mode for c in "wax+"):
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, mode, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
        monkeypatch.setattr(Path, "open", open_)
    yield folder
    folder.chmod(0o755)


def test_run_out_dir_in_readonly_folder_is_a_clean_error(config_file, readonly_dir):
    """`run.out_dir` inside a read-only folder showed a PermissionError traceback."""
    out_dir = readonly_dir / "runs"
    result = CliRunner().invoke(cli, ["run", str(config_file), "--quiet",
                                      "--set", f"run.out_dir={json.dumps(str(out_dir))}"])
    assert_clean_failure(result, str(out_dir), "Permission denied", "writable folder", "--set run.out_dir=")


def test_predict_out_in_readonly_folder_is_a_clean_error(tmp_path, readonly_dir):
    """`predict --out` into a read-only folder showed a PermissionError traceback."""
    import cv2

    from shiptoolkit.models.unet import unet

    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    model = tmp_path / "tiny.keras"
    unet((None, None, 3), base_filters=2, depth=1, dropout=0.0).save(str(model))
    out = readonly_dir / "submission.csv"
    result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--images", str(images), "--out", str(out),
                                      "--quiet"])
    # The folder, not necessarily the file: the writer may first write a temporary file beside it.
    assert_clean_failure(result, str(readonly_dir), "Permission denied", "writable folder", "--out")
    assert not out.exists()


@pytest.mark.parametrize("error, expected", [
    (OSError(30, "Read-only file system", "/mnt/ro/runs"), ["Cannot write '/mnt/ro/runs'", "Read-only file system",
                                                            "--set run.out_dir="]),
    (OSError(28, "No space left on device"), ["No space left on device", "Free some disk space"]),
])
def test_read_only_or_full_disk_is_a_clean_error(config_file, monkeypatch, error, expected):
    """A read-only file system or a full disk while making the run directory showed an OSError traceback."""
    def fail(out_dir, name):
        raise error

    monkeypatch.setattr("shiptoolkit.rundir.RunDir.create", fail)
    result = CliRunner().invoke(cli, ["run", str(config_file), "--quiet"])
    assert_clean_failure(result, *expected)
