import pytest

from shiptoolkit.config import SCHEMA, load_config
from shiptoolkit.errors import ConfigError


def cfg(raw=None, overrides=()):
    return load_config(raw or {}, overrides, check_components=False)


def test_defaults_filled_and_round_trip(tmp_path):
    config = cfg({"train": {"epochs": 2}})
    assert config["train"]["epochs"] == 2 and config["train"]["batch_size"] == 16
    path = config.save(tmp_path / "resolved.toml")
    again = load_config(path, check_components=False)
    assert again.values == config.values


def test_unknown_key_names_section_and_suggests():
    with pytest.raises(ConfigError, match=r"\[train\]: unknown key 'epoch'.*Did you mean 'epochs'"):
        cfg({"train": {"epoch": 3}})


def test_unknown_section():
    with pytest.raises(ConfigError, match="unknown section 'trian'.*Did you mean 'train'"):
        cfg({"trian": {}})


@pytest.mark.parametrize("section, key, value, expected", [
    ("train", "epochs", "ten", "int"),
    ("train", "epochs", True, "int"),
    ("train", "mixed_precision", 1, "bool"),
    ("predict", "threshold", "high", "float"),
    ("run", "stages", "train", "list"),
])
def test_wrong_types_name_expected_type(section, key, value, expected):
    with pytest.raises(ConfigError, match=f"{section}.{key} must be .*{expected}"):
        cfg({section: {key: value}})


def test_int_accepted_for_float():
    assert cfg({"train": {"learning_rate": 1}})["train"]["learning_rate"] == 1.0


def test_choices_and_ranges():
    with pytest.raises(ConfigError, match="one of"):
        cfg({"data": {"on_error": "ignore"}})
    with pytest.raises(ConfigError, match="predict.overlap must be in"):
        cfg({"predict": {"overlap": 1.0}})


def test_overrides_parse_toml_values_and_strings():
    config = cfg(overrides=["train.epochs=1", "train.learning_rate=3e-4", "sampler.name=ship_patches",
                            "run.stages=['train']"])
    assert config["train"]["epochs"] == 1 and config["train"]["learning_rate"] == 3e-4
    assert config["sampler"]["name"] == "ship_patches" and config["run"]["stages"] == ["train"]
    with pytest.raises(ConfigError, match="section.key=value"):
        cfg(overrides=["epochs=1"])


def test_every_key_is_documented():
    for section in SCHEMA.values():
        assert section.doc
        for key in section.keys:
            assert key.doc, f"{section.name}.{key.name} has no doc"


def test_typed_settings_cover_every_schema_key_and_are_frozen():
    import dataclasses

    config = load_config({"train": {"epochs": 3}, "classifier": {"name": "cnn_classifier", "base_filters": 8}})
    settings = config.settings
    for section in SCHEMA.values():
        view = getattr(settings, section.name)
        for key in section.keys:
            assert getattr(view, key.name) == config[section.name][key.name]
    assert settings.train.epochs == 3 and settings.classifier.params["base_filters"] == 8
    assert settings.backbone.name == "unet" and "depth" in settings.backbone.params
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.train.epochs = 4
