"""Every registered encoder: skip and output strides, raw 0..255 input, any number of bands, ImageNet weights.

Encoders are built once per module (`_built`: EfficientNetB7's graph alone takes seconds) and their
feature sizes checked symbolically at two input sizes. The ImageNet tests use no network: a fake
file (random values, written from keras.applications' own model in Keras 2's layout, so Keras's
layer order is what is checked) is served from a `file://` mirror with its hash patched in.
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

from shiptoolkit.errors import UnknownComponentError
from shiptoolkit.models import app_weights, bands, encoders, pretrained
from shiptoolkit.models.legacy_h5 import WeightsError
from shiptoolkit.plugins import get_registry

ENCODERS = get_registry("encoder").names()
# The slots (0..3 = strides 16, 8, 4, 2) a built-in encoder leaves None: ConvNeXt's stem has stride 4.
NONE_SLOTS = {"convnext_tiny": {3}, "convnext_small": {3}}
# One small encoder per family: built with 4 bands (three of them with 1 too).
FAMILIES = ("resnet18", "efficientnetb0", "efficientnetv2b0", "mobilenetv2", "mobilenetv3small", "densenet121",
            "convnext_tiny")
_cache: dict = {}


def _built(name: str, shape=(None, None, 3)):
    """(Encoder, keras.Model of its output) for `name` at `shape`, built once per module."""
    import keras

    from shiptoolkit.models.encoders import create_encoder

    if (name, shape) not in _cache:
        enc = create_encoder(name, shape, f"{name}_test")
        _cache[name, shape] = enc, keras.Model(enc.inputs, enc.output)
    return _cache[name, shape]


def _strides(enc, size: int, channels: int = 3) -> list:
    """Input side / feature side of the output and each skip (None stays None), at `size`."""
    import keras

    features = [enc.output, *(s for s in enc.skips if s is not None)]
    specs = iter(keras.Model(enc.inputs, features).compute_output_spec(keras.KerasTensor((1, size, size, channels))))
    out = next(specs).shape[1]
    return [size // out] + [None if s is None else size // next(specs).shape[1] for s in enc.skips]


@pytest.mark.parametrize("name", ENCODERS)
def test_every_encoder_gives_skips_at_strides_16_8_4_2_and_its_output_at_32(name):
    enc, model = _built(name)
    expected = [32] + [None if i in NONE_SLOTS.get(name, ()) else 16 // 2**i for i in range(4)]
    assert len(enc.skips) == 4
    for size in (64, 96):
        assert _strides(enc, size) == expected, (name, size)
    assert model.count_params() > 0
    weighted = {layer.name for layer in model.layers if layer.weights}
    assert weighted <= set(enc.layer_names)  # every weighted layer is one load_and_freeze knows


@pytest.mark.parametrize("name", ENCODERS)
def test_the_declared_facts_are_those_of_the_built_graph(name):
    # The docs' encoder table reads these facts instead of building 26 encoders (the same _built cache here).
    from shiptoolkit.models.encoder_facts import facts_of, imagenet_source

    facts = facts_of(get_registry("encoder").get(name).factory)
    assert facts is not None, f"the built-in encoder {name} declares no encoder_facts"
    enc, model = _built(name)
    assert facts.params == model.count_params()
    assert [facts.output_stride, *reversed(facts.skip_strides)] == [s for s in _strides(enc, 64) if s is not None]
    assert facts.weights == imagenet_source(name) and facts.weights.endswith("-checked") != (name == "mobilenetv2")


@pytest.mark.parametrize("name", ["mobilenetv3small", "efficientnetb0", "convnext_tiny", "densenet121"])
def test_raw_0_255_images_go_through(name):
    enc, model = _built(name)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    out = np.asarray(model(images))
    assert out.shape[:3] == (2, 2, 2) and np.all(np.isfinite(out))


def test_preprocessing_is_inside_each_family():
    import keras

    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 4)).astype("float32")
    mean, std = bands.repeat_channels((0.485, 0.456, 0.406), 4), bands.repeat_channels((0.229, 0.224, 0.225), 4)
    torch_mode = (x / 255 - mean) / std
    enc, _ = _built("efficientnetb0", (64, 64, 4))  # Keras's Normalization set to ImageNet's values
    norm = next(layer for layer in keras.Model(enc.inputs, enc.output).layers
                if isinstance(layer, keras.layers.Normalization))
    np.testing.assert_allclose(np.asarray(keras.Model(enc.inputs, norm.output)(x)), torch_mode, atol=1e-4)
    for name, expected in (("convnext_tiny", torch_mode), ("mobilenetv3small", x / 127.5 - 1)):
        enc, model = _built(name, (64, 64, 4))
        got = keras.Model(enc.inputs, model.get_layer("imagenet_preprocessing").output)(x)
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4)


@pytest.mark.parametrize("name, channels", [*((name, 4) for name in FAMILIES),
                                            ("resnet18", 1), ("mobilenetv3small", 1), ("convnext_tiny", 1)])
def test_any_number_of_bands_builds(name, channels):
    enc, model = _built(name, (64, 64, channels))
    assert tuple(model.input_shape) == (None, 64, 64, channels)
    assert _strides(enc, 64, channels)[:3] == [32, 16, 8]


def test_shapes_are_checked_with_the_nearest_sizes():
    from shiptoolkit.models.encoders import check_input_shape, create_encoder

    assert check_input_shape((None, 64, 7), 32, "m", channels=None) == (None, 64, 7)
    with pytest.raises(ValueError, match=r"expects input_shape \(height, width, 3\)"):
        check_input_shape((64, 64, 4), 32, "unet")  # the plain unet and the classifiers still demand RGB
    with pytest.raises(ValueError, match="channels >= 1"):
        check_input_shape((64, 64, 0), 32, "m", channels=None)
    with pytest.raises(Exception, match="nearest valid sizes: 64, 96"):
        create_encoder("mobilenetv3small", (70, 64, 3), "m")
    with pytest.raises(UnknownComponentError, match="efficientnetb0"):
        create_encoder("efficientnetb9", (64, 64, 3), "m")


def test_the_first_kernel_is_adapted_as_smp_does():
    kernel = np.arange(2 * 3 * 2, dtype="float32").reshape(1, 2, 3, 2)
    np.testing.assert_array_equal(bands.adapt_kernel(kernel, 1), kernel.sum(axis=2, keepdims=True))
    four = bands.adapt_kernel(kernel, 4)
    np.testing.assert_allclose(four, kernel[:, :, [0, 1, 2, 0], :] * 0.75)
    np.testing.assert_allclose(bands.adapt_kernel(kernel, 5)[:, :, 4], kernel[:, :, 1] * 0.6)
    np.testing.assert_array_equal(bands.repeat_channels([1, 2, 3], 5), [1, 2, 3, 1, 2])
    with pytest.raises(WeightsError, match=r"'conv': the model expects weight shape \(3, 3, 4, 8\)"):
        bands.adapt_arrays("conv", [np.zeros((3, 3, 3, 16))], [(3, 3, 4, 8)], "f.h5")


@pytest.mark.parametrize("typo", ["imagenett", "Imagenet", "imagnet"])
def test_an_encoder_weights_typo_names_the_allowed_values(typo):
    from shiptoolkit.models.encoders import check_encoder_weights

    with pytest.raises(WeightsError, match=r'must be "imagenet", the path of a \.h5 weights file, or None / ""\. '
                                           r'Did you mean "imagenet"\?'):
        check_encoder_weights(typo)
    check_encoder_weights("runs/a/encoder.h5")  # a path: loaded (or said missing) later
    with pytest.raises(WeightsError, match="Received: encoder_weights=3"):
        check_encoder_weights(3)
    enc, model = _built("resnet18")
    with pytest.raises(WeightsError, match=f"Did you mean .*Received: encoder_weights='{typo}'"):
        enc.load_and_freeze(model, typo)  # what every architecture calls


def test_the_keras_applications_table():
    assert set(app_weights.APPLICATION_WEIGHTS) == set(ENCODERS) - {n for n in ENCODERS if n.startswith("resnet")}
    assert pretrained.weights_url("efficientnetb0") == (
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5")
    assert pretrained.weights_url("convnext_tiny").endswith("keras-applications/convnext/convnext_tiny_notop.h5")
    with pytest.raises(WeightsError, match=r"available for .*resnet18.*efficientnetb0.*Received: encoder='vgg16'"):
        pretrained.weights_url("vgg16")


# ---- ImageNet weights from a fake mirror -------------------------------------------------------------

def _write_keras2(path, model, rng) -> list:
    """`model`'s layers in Keras 2's `save_weights` layout with random values; returns the arrays written,
    one list per weighted layer, in order."""
    written = []
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name for layer in model.layers], dtype=h5py.string_dtype())
        for layer in model.layers:
            group = f.create_group(layer.name)
            variables = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{i}_{v.name}:0" for i, v in enumerate(variables)]
            group.attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())
            arrays = [rng.uniform(0.1, 1.0, tuple(v.shape)).astype("float32") for v in variables]
            for name, array in zip(names, arrays, strict=True):
                group.create_dataset(name, data=array)
            if arrays:
                written.append((layer, arrays))
    return written


@pytest.fixture(scope="module")
def fake_mirror(tmp_path_factory):
    """fake(name) -> (mirror folder, [(layer, arrays)], hash): keras.applications' own model's file, random."""
    import keras

    from shiptoolkit.models.applications import SPECS

    folder, made = tmp_path_factory.mktemp("mirror"), {}

    def fake(name):
        if name not in made:
            spec = SPECS[name]
            model = getattr(keras.applications, spec.constructor)(include_top=False, weights=None,
                                                                  input_shape=(32, 32, 3), **spec.kwargs)
            fname, real_hash, _ = app_weights.APPLICATION_WEIGHTS[name]
            written = _write_keras2(folder / fname, model, np.random.default_rng(3))
            algorithm = "sha256" if real_hash and len(real_hash) == 64 else "md5"
            made[name] = folder, written, hashlib.new(algorithm, (folder / fname).read_bytes()).hexdigest()
        return made[name]

    return fake


@pytest.fixture
def mirrored(fake_mirror, monkeypatch, tmp_path):
    """mirrored(name): the fake file of `name` expected and served; returns (written, cache folder)."""
    def serve(name):
        folder, written, digest = fake_mirror(name)
        fname, _, base = app_weights.APPLICATION_WEIGHTS[name]
        monkeypatch.setitem(app_weights.APPLICATION_WEIGHTS, name, (fname, digest, base))
        monkeypatch.setenv(pretrained.BASE_URL_ENV, folder.as_uri())
        return written, tmp_path / "cache"

    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    return serve


@pytest.mark.parametrize("name", ["mobilenetv3small", "convnext_tiny", "efficientnetb0"])
def test_imagenet_loads_keras_files_in_keras_order(name, mirrored):
    import keras

    written, cache = mirrored(name)
    enc, model = _built(name, (None, None, 3))
    norm_before = [np.asarray(v) for layer in model.layers if isinstance(layer, keras.layers.Normalization)
                   for v in layer.weights]
    enc.load_and_freeze(model, "imagenet", freeze=True)
    assert (cache / "shiptoolkit" / app_weights.APPLICATION_WEIGHTS[name][0]).is_file()
    mine = [layer for layer in model.layers if layer.weights]
    assert len(mine) == len(written)
    for layer, (source, arrays) in zip(mine, written, strict=True):
        got = [np.asarray(v) for v in layer.trainable_weights + layer.non_trainable_weights]
        if isinstance(layer, keras.layers.Normalization):  # keeps the ImageNet values set at build
            np.testing.assert_array_equal(got[:2], norm_before[:2])
            continue
        for g, a in zip(got, arrays, strict=True):
            np.testing.assert_array_equal(g, a, err_msg=f"{layer.name} <- {source.name}")
        assert layer.trainable == isinstance(layer, keras.layers.BatchNormalization)


@pytest.mark.parametrize("name, first, later", [("mobilenetv3small", "conv", "conv_bn"),
                                                ("convnext_tiny", "convnext_tiny_stem", "convnext_tiny_stem")])
def test_imagenet_adapts_the_first_convolution_to_the_bands(name, first, later, mirrored):
    written = {layer.name: arrays for layer, arrays in mirrored(name)[0]}
    rgb = written[first][0]
    for channels in (1, 4):
        enc, model = _built(name, (64, 64, channels))
        enc.load_and_freeze(model, "imagenet")
        kernel = np.asarray(model.get_layer(first).trainable_weights[0])
        expected = rgb.sum(axis=2, keepdims=True) if channels == 1 else rgb[:, :, [0, 1, 2, 0]] * 0.75
        np.testing.assert_allclose(kernel, expected, rtol=1e-6)
        layer = model.get_layer(later)  # what the bands do not change comes from the file as it is
        np.testing.assert_array_equal(np.asarray((layer.trainable_weights + layer.non_trainable_weights)[-1]),
                                      written[later][-1])


def test_resnet_imagenet_adapts_conv0_and_bn_data(tmp_path, monkeypatch):
    _, rgb_model = _built("resnet18")
    path = tmp_path / pretrained.IMAGENET_WEIGHTS["resnet18"][0]
    written = {layer.name: arrays for layer, arrays in _write_keras2(path, rgb_model, np.random.default_rng(5))}
    monkeypatch.setitem(pretrained.IMAGENET_WEIGHTS, "resnet18",
                        (path.name, hashlib.md5(path.read_bytes()).hexdigest()))
    monkeypatch.setenv(pretrained.BASE_URL_ENV, tmp_path.as_uri())
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    enc, model = _built("resnet18", (64, 64, 4))
    enc.load_and_freeze(model, "imagenet")
    np.testing.assert_allclose(np.asarray(model.get_layer("conv0").kernel),
                               written["conv0"][0][:, :, [0, 1, 2, 0]] * 0.75, rtol=1e-6)
    beta, mean, var = (np.asarray(v) for v in model.get_layer("bn_data").weights)
    np.testing.assert_array_equal(mean, written["bn_data"][1][[0, 1, 2, 0]])
    np.testing.assert_array_equal(np.asarray(model.get_layer("stage1_unit1_conv1").kernel),
                                  written["stage1_unit1_conv1"][0])


def test_a_wrong_hash_is_refused_and_offline_names_url_and_cache_path(mirrored, monkeypatch, tmp_path):
    enc, model = _built("mobilenetv3small", (None, None, 3))
    _, cache = mirrored("mobilenetv3small")
    fname, digest, base = app_weights.APPLICATION_WEIGHTS["mobilenetv3small"]
    monkeypatch.setitem(app_weights.APPLICATION_WEIGHTS, "mobilenetv3small", (fname, "0" * 32, base))
    with pytest.raises(WeightsError, match=rf"have md5 {digest}, expected {'0' * 32}: the file was not used"):
        enc.load_and_freeze(model, "imagenet")
    assert not (cache / "shiptoolkit" / fname).exists()

    monkeypatch.setitem(app_weights.APPLICATION_WEIGHTS, "convnext_small", ("convnext_small_notop.h5", "a" * 64, base))
    dead = (tmp_path / "nowhere").as_uri()
    monkeypatch.setenv(pretrained.BASE_URL_ENV, dead)
    with pytest.raises(WeightsError) as info:
        pretrained.imagenet_weights_path("convnext_small")
    message = str(info.value)
    assert f"{dead}/convnext_small_notop.h5" in message
    assert f"put it at {cache / 'shiptoolkit' / 'convnext_small_notop.h5'} (sha256 {'a' * 64})" in message


def test_a_file_without_a_known_hash_is_downloaded_once_then_cached(tmp_path, monkeypatch):
    fname, _, base = app_weights.APPLICATION_WEIGHTS["mobilenetv2"]  # Keras gives no hash for MobileNetV2
    assert _ is None
    (tmp_path / fname).write_bytes(b"weights")
    monkeypatch.setenv(pretrained.BASE_URL_ENV, tmp_path.as_uri())
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    path = pretrained.imagenet_weights_path("mobilenetv2")
    assert path == tmp_path / "cache" / "shiptoolkit" / fname and path.read_bytes() == b"weights"
    monkeypatch.setenv(pretrained.BASE_URL_ENV, (tmp_path / "nowhere").as_uri())
    assert pretrained.imagenet_weights_path("mobilenetv2") == path  # the cache, without the network


@pytest.mark.parametrize("name", ["mobilenetv2", "mobilenetv3small"])
def test_batch_norms_adapt_within_a_short_training(name):
    """Keras's MobileNets come with batch-norm momentum 0.999: from random weights a quickstart-length training left
    their moving statistics half-way and the model predicted nothing; every encoder's momentum is at most 0.99."""
    import keras

    enc = encoders.create_encoder(name, (64, 64, 3), "test")
    model = keras.Model(enc.inputs, enc.output)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and max(layer.momentum for layer in norms) <= 0.99
    assert all(layer.get_config()["momentum"] <= 0.99 for layer in norms)  # kept in saved models
