"""segmentation-models' architectures on the registered encoders: parity with sm 1.0.1, every architecture x
one encoder per family, input sizes refused with the size needed, the plain `unet` unchanged, a fit step.

Parity numbers were measured with segmentation-models 1.0.1 on tf-keras (classes=1, sigmoid). Models are
built once per module: an encoder's graph is built once per (encoder, input shape) and shared by the
architectures built on it (building EfficientNet's graph takes seconds; the decoders are what differ).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from shiptoolkit.errors import ConfigError, UnknownComponentError
from shiptoolkit.models import architectures, encoders
from shiptoolkit.plugins import get_registry

ARCHS = ("unet", "fpn", "linknet", "pspnet", "deeplabv3plus")
_SIZE_RANK = {"tiny": -1, "small": 0, "s": 50, "m": 60, "large": 100, "l": 100, "base": 100}


def family(name: str) -> str:
    """resnet18 -> resnet, efficientnetb0 -> efficientnet, efficientnetv2s -> efficientnetv2,
    mobilenetv2 -> mobilenetv2, mobilenetv3small -> mobilenetv3, convnexttiny -> convnext."""
    return re.sub(r"(_?(b\d+|(?<!v)\d+|tiny|small|large|base|s|m|l))+$", "", name)


def _size(name: str) -> tuple[int, str]:
    tail = name[len(family(name)):].lstrip("_")
    digits = re.sub(r"\D", "", tail)
    return (int(digits) if digits else _SIZE_RANK.get(tail, 0), name)


def smallest_per_family() -> list[str]:
    groups: dict[str, list[str]] = {}
    for name in get_registry("encoder").names():
        groups.setdefault(family(name), []).append(name)
    return sorted(min(names, key=_size) for names in groups.values())


def test_family_and_smallest():
    assert [family(n) for n in ("resnet152", "efficientnetb7", "efficientnetv2b3", "efficientnetv2s", "mobilenetv2",
                                "mobilenetv3large", "densenet201", "convnext_small")] == [
        "resnet", "efficientnet", "efficientnetv2", "efficientnetv2", "mobilenetv2", "mobilenetv3", "densenet",
        "convnext"]
    assert "resnet18" in smallest_per_family() and "resnet34" not in smallest_per_family()
    assert min(["convnext_small", "convnext_tiny"], key=_size) == "convnext_tiny"
    assert min(["efficientnetv2s", "efficientnetv2b3", "efficientnetv2b0"], key=_size) == "efficientnetv2b0"
    assert min(["mobilenetv3large", "mobilenetv3small"], key=_size) == "mobilenetv3small"


@pytest.fixture(scope="module")
def build(monkeypatch_module):
    """build(arch, encoder, shape=(None, None, 3), **params): cached models; encoders shared per (name, shape)."""
    made_encoders: dict = {}
    real = architectures.create_encoder

    def shared_encoder(name, input_shape, model_name):
        key = (name, tuple(input_shape))
        if key not in made_encoders:
            made_encoders[key] = real(name, input_shape, model_name)
        return made_encoders[key]

    monkeypatch_module.setattr(architectures, "create_encoder", shared_encoder)
    models: dict = {}

    def make(arch, encoder, shape=(None, None, 3), **params):
        key = (arch, encoder, shape, tuple(sorted(params.items())))
        if key not in models:
            models[key] = getattr(architectures, arch)(shape, encoder=encoder, **params)
        return models[key]

    return make


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


# ---- parity with segmentation-models 1.0.1 -----------------------------------------------------

def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("arch, shape, params", [
    ("unet", (None, None, 3), 24_456_154),  # sm.Unet('resnet34')
    ("fpn", (None, None, 3), 23_930_954),  # sm.FPN('resnet34')
    ("linknet", (None, None, 3), 21_637_274),  # sm.Linknet('resnet34')
    ("pspnet", (384, 384, 3), 2_746_058),  # sm.PSPNet('resnet34'), 384 px
])
def test_resnet34_parity_with_segmentation_models(build, arch, shape, params):
    assert build(arch, "resnet34", shape).count_params() == params


def test_unet_resnet34_is_resnet34_unet_layer_for_layer(build):
    from shiptoolkit.models.resnet_unet import resnet34_unet

    ours, theirs = build("unet", "resnet34"), resnet34_unet((None, None, 3))
    assert [(w.path, tuple(w.shape)) for w in ours.weights] == [(w.path, tuple(w.shape)) for w in theirs.weights]


def test_resnet50_unet_parity(build):
    """sm.Unet('resnet50') on classification_models' ResNet50: 32,513,556 trainable (the issue's number)."""
    model = build("unet", "resnet50")
    assert _trainable(model) == 32_513_556 and model.count_params() == 32_561_114
    names = {layer.name for layer in model.layers}
    assert {"stage4_unit1_relu1", "stage3_unit6_conv3", "stage4_unit3_bn3", "decoder_stage0_concat"} <= names


def test_sm_layer_names(build):
    """Weights saved by sm load by name: a sample of its names, per decoder."""
    expected = {
        "fpn": {"fpn_stage_p5_pre_conv", "fpn_stage_p2_conv", "segm_stage2b_bn", "upsampling_stage5",
                "aggregation_concat", "final_stage_conv", "final_upsampling", "head_conv", "sigmoid"},
        "linknet": {"decoder_stage0a_conv", "decoder_stage0_add", "decoder_stage4c_bn", "final_conv"},
        "pspnet": {"psp_level6_pooling", "psp_level1_conv", "psp_concat", "aggregation_relu", "final_conv"},
    }
    for arch, names in expected.items():
        shape = (384, 384, 3) if arch == "pspnet" else (None, None, 3)
        assert names <= {layer.name for layer in build(arch, "resnet34", shape).layers}, arch
    assert "stage4_unit1_bn1" not in {layer.name for layer in build("pspnet", "resnet34", (384, 384, 3)).layers}


# Part A's keras.applications encoders (sm 1.0.1 on tf-keras, measured).
def test_efficientnetb0_parity(build):
    assert _trainable(build("unet", "efficientnetb0")) == 10_071_501
    assert _trainable(build("fpn", "efficientnetb0")) == 6_994_173


def test_mobilenetv2_parity(build):
    model = build("unet", "mobilenetv2")  # trainable, as the issue says (the lead's brief said total: 8,047,441)
    assert _trainable(model) == 8_011_345 and model.count_params() == 8_047_441


# ---- every architecture x one encoder per family -------------------------------------------------

@pytest.mark.parametrize("encoder", smallest_per_family())
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_on_every_encoder_family(build, arch, encoder):
    """Two sizes: any multiple of 32 on one build (the second size's shapes traced symbolically, which costs
    no compute); PSPNet's fixed size a build per size (the second on ResNet only: encoders take seconds)."""
    import keras

    if arch == "pspnet":
        shapes = [((96, 96, 3), 96), ((192, 192, 3), 192)][:2 if encoder.startswith("resnet") else 1]
    else:
        shapes = [((None, None, 3), 64), ((None, None, 3), 96)]
    x = np.random.default_rng(0).uniform(0, 255, (1, shapes[0][1], shapes[0][1], 3)).astype("float32")
    y = np.asarray(build(arch, encoder, shapes[0][0])(x, training=False))
    assert y.shape == x.shape[:3] + (1,) and ((y >= 0) & (y <= 1)).all(), (arch, encoder)
    for shape, side in shapes:
        out = build(arch, encoder, shape).compute_output_spec(keras.KerasTensor((1, side, side, 3)))
        assert tuple(out.shape) == (1, side, side, 1), (arch, encoder, side)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_fit_step_on_resnet18(build, arch):
    import keras

    side = 96 if arch == "pspnet" else 64
    model = build(arch, "resnet18", (96, 96, 3) if arch == "pspnet" else (None, None, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (2, side, side, 3)).astype("float32")
    y = (rng.uniform(size=(2, side, side, 1)) > 0.9).astype("float32")
    before = [np.asarray(w).copy() for w in model.trainable_weights[-2:]]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights[-2:], strict=True))


def test_deeplabv3plus_saves_loads_and_predicts_two_sizes(build, tmp_path):
    """Its own layers (ASPP's image pooling, the bilinear upsampling) reload in safe mode, and run once
    `predict` retraces for a second size (Keras 3.15's bilinear UpSampling2D failed there)."""
    from shiptoolkit.models.saving import load_model, save_model

    model = build("deeplabv3plus", "resnet18")
    loaded = load_model(save_model(model, tmp_path / "m.keras"))
    for side in (64, 96):
        x = np.full((1, side, side, 3), 100.0, "float32")
        assert np.allclose(loaded.predict(x, verbose=0), np.asarray(model(x, training=False)), atol=1e-5)


# ---- input sizes, parameters, errors -------------------------------------------------------------

@pytest.mark.parametrize("arch, kwargs, match", [
    ("fpn", {"input_shape": (100, 100, 3)}, r"fpn \(encoder 'resnet18'\) needs height and width divisible by 32.*"
                                            r"nearest valid sizes: 96, 128"),
    ("unet", {"input_shape": (48, 64, 3)}, "divisible by 32.*nearest valid sizes: 32, 64"),
    ("pspnet", {"input_shape": (336, 336, 3)}, r"divisible by 96: 6 \* downsample_factor = 48.*288, 384"),
    ("pspnet", {"input_shape": (None, None, 3)}, "pspnet .*needs a fixed input size"),
    ("pspnet", {"input_shape": (64, 64, 3), "downsample_factor": 16}, "divisible by 96.*96, 192"),
    ("pspnet", {"downsample_factor": 2}, "downsample_factor must be one of 16, 8, 4. Received: downsample_factor=2"),
    ("fpn", {"pyramid_aggregation": "mean"}, "pyramid_aggregation must be one of 'concat', 'sum'"),
    ("linknet", {"decoder_block_type": "deconv"}, "decoder_block_type must be one of 'upsampling', 'transpose'"),
    ("unet", {"depth": 3}, r"unet: depth=3 is the plain U-Net's \(encoder unset\) parameter\(s\) only"),
])
def test_bad_sizes_and_parameters_are_refused_naming_the_fix(arch, kwargs, match):
    kwargs = {"input_shape": (64, 64, 3), **kwargs}
    with pytest.raises(ConfigError, match=match):
        get_registry("backbone").create(arch, encoder="resnet18", **kwargs)


def test_plain_unet_parameters_and_sm_parameters_do_not_mix():
    with pytest.raises(ConfigError, match="decoder_filters=.*set encoder"):
        architectures.unet((64, 64, 3), decoder_filters=(8, 8, 8, 8, 8))
    with pytest.raises(ConfigError, match="decoder_filters must be 5 positive numbers"):
        architectures.unet((64, 64, 3), encoder="resnet18", decoder_filters=(8, 8, 8))


def test_unknown_encoder_lists_the_registered_ones():
    with pytest.raises(UnknownComponentError, match="resnet35.*resnet18.*resnet34"):
        get_registry("backbone").create("fpn", input_shape=(64, 64, 3), encoder="resnet35")


def test_unet_without_encoder_is_the_seeds_plain_unet():
    from shiptoolkit.models.unet import unet as plain

    ours = get_registry("backbone").create("unet", input_shape=(64, 64, 3), base_filters=4, depth=2)
    seed = plain((64, 64, 3), base_filters=4, depth=2)
    assert ours.name == "unet" and ours.count_params() == seed.count_params()
    assert [layer.name for layer in ours.layers] == [layer.name for layer in seed.layers]
    assert architectures.unet().count_params() == plain().count_params()  # the seed's defaults, 128 px


def test_pspnet_freezes_only_the_encoder_layers_it_has(build):
    """PSPNet stops at the stride-8 feature: freezing (and ImageNet's every-layer check) skips the rest."""
    model = build("pspnet", "resnet18", (288, 288, 3), encoder_freeze=True)
    assert not model.get_layer("conv0").trainable and not model.get_layer("stage2_unit2_conv2").trainable
    assert model.get_layer("bn0").trainable and model.get_layer("psp_level6_conv").trainable
    assert "stage4_unit1_conv1" not in {layer.name for layer in model.layers}


def test_in_channels_sets_the_input_bands(build):
    model = build("fpn", "resnet18", (64, 64, 3), in_channels=4)
    assert model.input_shape == (None, 64, 64, 4) and model.output_shape == (None, 64, 64, 1)


def test_resnet_encoders_are_registered_with_their_imagenet_files():
    from shiptoolkit.models.pretrained import IMAGENET_WEIGHTS

    for name in ("resnet50", "resnet101", "resnet152"):
        assert name in get_registry("encoder").names()
        assert IMAGENET_WEIGHTS[name][0] == f"{name}_imagenet_1000_no_top.h5"
    assert encoders.BOTTLENECK == ("resnet50", "resnet101", "resnet152")


@pytest.mark.parametrize("arch", ["unet", "fpn", "linknet", "pspnet", "deeplabv3plus"])
def test_a_misspelled_encoder_is_refused_when_the_config_loads(arch):
    """`[backbone] encoder = "resnet35"` fails at load (a dry run), not minutes later when the model is built."""
    from shiptoolkit.config import load_config

    with pytest.raises(ConfigError, match=r"encoder = 'resnet35'.*Known encoders: .*resnet34"):
        load_config({"backbone": {"name": arch, "encoder": "resnet35"}}, [])
    assert load_config({"backbone": {"name": arch, "encoder": "mobilenetv2"}}, []).settings.backbone.params[
        "encoder"] == "mobilenetv2"
