"""Every registered backbone gets a build/forward test for free; plus architecture specifics."""

import h5py
import numpy as np
import pytest

from shiptoolkit.models.legacy_h5 import WeightsError, load_legacy_h5_weights
from shiptoolkit.plugins import get_registry


@pytest.mark.parametrize("name", get_registry("backbone").names())
@pytest.mark.parametrize("classes", [1, 2])
def test_every_backbone_builds_and_keeps_size(name, classes):
    size = 96 if name == "pspnet" else 64  # pspnet: sides divisible by 96 (6 * downsample_factor and 32)
    model = get_registry("backbone").create(name, input_shape=(size, size, 3), classes=classes)
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, size, size, classes)
    assert (y >= 0).all() and (y <= 1).all()  # sigmoid output


@pytest.fixture(scope="module")
def resnet34():
    from shiptoolkit.models.resnet_unet import resnet34_unet

    return resnet34_unet((None, None, 3))


def test_resnet34_unet_matches_segmentation_models(resnet34):
    # Measured against segmentation-models 1.0.1 sm.Unet('resnet34', classes=1): 24,456,154 params,
    # the same 93 weighted layers in the same order (see the note on the backbones issue).
    assert resnet34.count_params() == 24_456_154
    names = [layer.name for layer in resnet34.layers if layer.weights]
    assert len(names) == 93
    assert names[:4] == ["bn_data", "conv0", "bn0", "stage1_unit1_bn1"]
    assert {"stage4_unit3_conv2", "decoder_stage0a_conv", "decoder_stage4b_bn", "final_conv"} <= set(names)
    for size in (64, 96, 160):  # fully convolutional: any multiple of 32
        out = resnet34(np.zeros((1, size, size, 3), "float32"), training=False)
        assert tuple(out.shape) == (1, size, size, 1)


def test_resnet18_param_count():
    from shiptoolkit.models.resnet_unet import resnet18_unet

    assert resnet18_unet().count_params() == 14_340_570  # sm.Unet('resnet18'), measured


def write_legacy_h5(path, model, layer_names, perturb=0.0, model_file=False):
    """Write weights in the exact Keras 2 layout segmentation-models produces (checked on real files)."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if model_file else f
        root.attrs["layer_names"] = np.array(layer_names, dtype=h5py.string_dtype())
        root.attrs["backend"], root.attrs["keras_version"] = "tensorflow", "2.21.0"
        for name in layer_names:
            group = root.create_group(name)
            layer = model.get_layer(name)
            weight_names = [f"{name}/{w.path.split('/')[-1]}:0" for w in layer.weights]
            group.attrs["weight_names"] = np.array(weight_names, dtype=h5py.string_dtype())
            for wname, w in zip(weight_names, layer.weights, strict=True):
                group.create_dataset(wname, data=np.asarray(w) + perturb)


@pytest.mark.parametrize("model_file", [False, True])
def test_legacy_h5_loads_by_layer_name(tmp_path, resnet34, model_file):
    from shiptoolkit.models.resnet_unet import resnet34_unet

    encoder = ["bn_data", "conv0", "bn0"]
    path = tmp_path / "sm.h5"
    write_legacy_h5(path, resnet34, encoder, perturb=0.5, model_file=model_file)
    fresh = resnet34_unet((64, 64, 3))
    before = np.asarray(fresh.get_layer("conv0").weights[0]).copy()
    report = load_legacy_h5_weights(fresh, path)
    assert report["loaded"] == encoder and "final_conv" in report["missing"]
    after = np.asarray(fresh.get_layer("conv0").weights[0])
    assert np.allclose(after, np.asarray(resnet34.get_layer("conv0").weights[0]) + 0.5)
    assert not np.allclose(after, before)
    built = resnet34_unet((64, 64, 3), encoder_weights=str(path))  # the same through the parameter
    assert np.allclose(np.asarray(built.get_layer("conv0").weights[0]), after)


def test_legacy_h5_errors(tmp_path, resnet34):
    from shiptoolkit.models.resnet_unet import resnet34_unet

    with pytest.raises(WeightsError, match="not found.*nothing is downloaded"):
        resnet34_unet(encoder_weights=str(tmp_path / "missing.h5"))
    two_classes = resnet34_unet(classes=2)
    path = tmp_path / "one_class.h5"
    write_legacy_h5(path, resnet34, ["final_conv"])
    with pytest.raises(WeightsError, match=r"final_conv.*\(3, 3, 16, 2\).*\(3, 3, 16, 1\)"):
        load_legacy_h5_weights(two_classes, path)
    assert load_legacy_h5_weights(two_classes, path, skip_mismatch=True)["skipped"] == ["final_conv"]


def test_encoder_freeze_keeps_batchnorm_trainable():
    from shiptoolkit.models.resnet_unet import resnet18_unet

    model = resnet18_unet(encoder_freeze=True)
    assert not model.get_layer("conv0").trainable and model.get_layer("bn0").trainable
    assert model.get_layer("decoder_stage0a_conv").trainable


# Counts measured when each model had its own copy of the encoder (registry defaults, input 64x64);
# a U-Net and a classifier on the same encoder freeze the same layers.
@pytest.mark.parametrize("kind, name, params, frozen", [
    ("backbone", "resnet34_unet", 24_456_154, 123),
    ("backbone", "resnet18_unet", 14_340_570, 67),
    ("classifier", "resnet34_classifier", 21_303_498, 123),
    ("classifier", "resnet18_classifier", 11_187_914, 67),
])
def test_resnet_models_are_built_on_the_shared_encoder(kind, name, params, frozen):
    import keras

    from shiptoolkit.models.encoders import resnet_encoder

    model = get_registry(kind).create(name, input_shape=(64, 64, 3))
    assert model.count_params() == params and model.name == name
    encoder = resnet_encoder(name.split("_")[0], (64, 64, 3), name)
    encoder_weighted = [layer.name for layer in keras.Model(encoder.inputs, encoder.output).layers if layer.weights]
    assert [layer.name for layer in model.layers if layer.weights][:len(encoder_weighted)] == encoder_weighted
    frozen_model = get_registry(kind).create(name, input_shape=(64, 64, 3), encoder_freeze=True)
    frozen_names = {layer.name for layer in frozen_model.layers if not layer.trainable}
    assert len(frozen_names) == frozen and {"data", "conv0", "stage4_unit1_sc"} <= frozen_names
    assert not frozen_names & {"bn_data", "bn0", "bn1", "ship_probability", "final_conv", "decoder_stage0a_conv"}


def test_classifier_loads_unet_encoder_weights(tmp_path, resnet34):
    from shiptoolkit.models.classifiers import resnet34_classifier

    path = tmp_path / "sm.h5"
    write_legacy_h5(path, resnet34, ["bn_data", "conv0", "bn0"], perturb=0.5)
    classifier = resnet34_classifier((64, 64, 3), encoder_weights=str(path))
    assert np.allclose(np.asarray(classifier.get_layer("conv0").weights[0]),
                       np.asarray(resnet34.get_layer("conv0").weights[0]) + 0.5)


def test_check_input_shape_is_shared_and_names_nearest_sizes():
    from shiptoolkit.models.encoders import check_input_shape, resnet_encoder

    assert check_input_shape([None, 64, 3], 32, "m") == (None, 64, 3)
    with pytest.raises(ValueError, match="resnet34_unet needs height and width divisible by 32.*96, 128"):
        get_registry("backbone").create("resnet34_unet", input_shape=(100, 100, 3))
    with pytest.raises(ValueError, match="encoder must be one of \\['resnet101', 'resnet152', 'resnet18', 'resnet34'"):
        resnet_encoder("resnet200", (64, 64, 3), "m")


@pytest.mark.parametrize("kwargs, match", [
    ({"depth": 0}, "depth must be >= 1. Received: depth=0"),
    ({"input_shape": (100, 100, 3)}, "divisible by 16.*nearest valid sizes: 96, 112"),
    ({"input_shape": (64, 64, 1)}, "input_shape \\(height, width, 3\\)"),
    ({"dropout": 1.0}, "dropout must be in"),
])
def test_unet_argument_errors(kwargs, match):
    from shiptoolkit.models.unet import unet

    with pytest.raises(ValueError, match=match):
        unet(**kwargs)


def test_unet_seed_architecture():
    from shiptoolkit.models.unet import unet

    model = unet()
    assert model.get_layer("rescale").scale == pytest.approx(1 / 255)
    assert [model.get_layer(f"down{i}a_conv").filters for i in range(4)] == [32, 64, 128, 256]
    assert model.get_layer("bottlenecka_conv").filters == 512
    assert model.get_layer("up0_transpose").kernel_size == (3, 3)


def test_model_file_round_trip_in_safe_mode(tmp_path):
    from shiptoolkit.models.losses import bce_dice
    from shiptoolkit.models.saving import ModelFileError, load_model, save_model
    from shiptoolkit.models.unet import unet
    from shiptoolkit.scoring.metrics import Dice

    model = unet((32, 32, 3), base_filters=4, depth=2)
    model.compile("adam", loss=bce_dice(), metrics=[Dice().keras_metric()])
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    path = save_model(model, tmp_path / "m.keras")
    again = load_model(path, compile=True)
    assert np.allclose(np.asarray(model(x)), np.asarray(again(x)), atol=1e-6)
    assert again.loss.name == "bce_dice"
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.keras")
    with pytest.raises(ModelFileError, match="load_legacy_h5_weights"):
        (tmp_path / "old.h5").write_bytes(b"x")
        load_model(tmp_path / "old.h5")
