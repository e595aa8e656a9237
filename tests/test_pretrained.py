"""`encoder_weights="imagenet"` without the internet: a fake ImageNet file served from 127.0.0.1.

The file is the resnet18 encoder with random values, written in the Keras 2 layout of
classification_models' `*_no_top.h5` (every layer listed, weightless ones with no weights); its md5
replaces the real one in `IMAGENET_WEIGHTS`, `SHIPTOOLKIT_WEIGHTS_URL` points at the local server
and `SHIPTOOLKIT_WEIGHTS_CACHE` at tmp_path, so nothing touches ~/.keras or GitHub.
"""

import hashlib
import http.server
import socket
import threading
from functools import partial

import h5py
import numpy as np
import pytest

from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.models import pretrained
from shiptoolkit.models.legacy_h5 import WeightsError
from shiptoolkit.plugins import get_registry

FNAME = pretrained.IMAGENET_WEIGHTS["resnet18"][0]


def write_keras2_weights(path, model, rng):
    """Every layer of `model` in the Keras 2 `save_weights` layout, weights replaced by random values.

    Returns {layer name: the arrays written}."""
    written = {}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name for layer in model.layers], dtype=h5py.string_dtype())
        f.attrs["backend"], f.attrs["keras_version"] = "tensorflow", "2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.path.split('/')[-1]}:0" for w in layer.weights]
            group.attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())
            arrays = [rng.uniform(0.1, 1.0, tuple(w.shape)).astype("float32") for w in layer.weights]
            for name, array in zip(names, arrays, strict=True):
                group.create_dataset(name, data=array)
            if arrays:
                written[layer.name] = arrays
    return written


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    """(folder served, {layer: arrays}, md5) of a fake resnet18 ImageNet no-top file."""
    import keras

    from shiptoolkit.models.encoders import resnet_encoder

    folder = tmp_path_factory.mktemp("served")
    encoder = resnet_encoder("resnet18", (32, 32, 3), "fake")
    written = write_keras2_weights(folder / FNAME, keras.Model(encoder.inputs, encoder.output),
                                   np.random.default_rng(7))
    return folder, written, hashlib.md5((folder / FNAME).read_bytes()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):  # noqa: N802 - the http.server name
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(fake_imagenet):
    """A local HTTP server for the fake file; yields (base URL, the paths it was asked for)."""
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(fake_imagenet[0])))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()


def _dead_url():
    with socket.socket() as s:  # a free port nobody listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def offline_env(tmp_path, monkeypatch, fake_imagenet):
    """The cache in tmp_path, the fake file's md5 expected; returns the cache folder."""
    monkeypatch.setitem(pretrained.IMAGENET_WEIGHTS, "resnet18", (FNAME, fake_imagenet[2]))
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return tmp_path / "cache"


def _assert_encoder_from_file(model, written):
    for name, arrays in written.items():
        for got, expected in zip(model.get_layer(name).weights, arrays, strict=True):
            np.testing.assert_array_equal(np.asarray(got), expected, err_msg=name)


def test_imagenet_downloads_once_then_uses_the_cache(offline_env, server, fake_imagenet, monkeypatch):
    from shiptoolkit.models.classifiers import resnet18_classifier
    from shiptoolkit.models.resnet_unet import resnet18_unet

    url, requests = server
    monkeypatch.setenv(pretrained.BASE_URL_ENV, url)
    model = resnet18_unet((64, 64, 3), encoder_weights="imagenet")
    assert requests == [f"/{FNAME}"]
    cached = offline_env / "shiptoolkit" / FNAME
    assert cached.is_file() and pretrained.cached_path("resnet18") == cached
    _assert_encoder_from_file(model, fake_imagenet[1])
    # the decoder is untouched: BatchNormalization and bias at Keras' initial values
    bn = model.get_layer("decoder_stage0a_bn")
    assert np.all(np.asarray(bn.gamma) == 1) and np.all(np.asarray(bn.moving_mean) == 0)
    assert np.all(np.asarray(model.get_layer("final_conv").bias) == 0)

    monkeypatch.setenv(pretrained.BASE_URL_ENV, _dead_url())  # the cache, without the network
    classifier = get_registry("classifier").create("resnet18_classifier", input_shape=(64, 64, 3),
                                                   encoder_weights="imagenet")
    _assert_encoder_from_file(classifier, fake_imagenet[1])
    assert np.all(np.asarray(classifier.get_layer("ship_probability").bias) == 0)
    frozen = resnet18_classifier((64, 64, 3), encoder_weights="imagenet", encoder_freeze=True)
    assert not frozen.get_layer("conv0").trainable and frozen.get_layer("bn0").trainable
    assert requests == [f"/{FNAME}"]


def test_a_wrong_md5_is_refused(offline_env, server, fake_imagenet, monkeypatch):
    from shiptoolkit.models.resnet_unet import resnet18_unet

    url, requests = server
    monkeypatch.setenv(pretrained.BASE_URL_ENV, url)
    monkeypatch.setitem(pretrained.IMAGENET_WEIGHTS, "resnet18", (FNAME, "0" * 32))
    with pytest.raises(WeightsError) as info:
        resnet18_unet((64, 64, 3), encoder_weights="imagenet")
    message = str(info.value)
    assert f"downloaded from {url}{FNAME} have md5 {fake_imagenet[2]}, expected {'0' * 32}" in message
    assert "the file was not used" in message and info.value.__suppress_context__
    assert requests == [f"/{FNAME}"] and not (offline_env / "shiptoolkit" / FNAME).exists()


def test_offline_names_the_url_and_the_cache_path(offline_env, monkeypatch):
    from shiptoolkit.models.classifiers import resnet18_classifier

    url = _dead_url()
    monkeypatch.setenv(pretrained.BASE_URL_ENV, url)
    with pytest.raises(ShiptoolkitError) as info:
        resnet18_classifier((64, 64, 3), encoder_weights="imagenet")
    message = str(info.value)
    assert "Could not download the resnet18 ImageNet weights" in message
    assert f"{url}{FNAME}" in message and str(offline_env / "shiptoolkit" / FNAME) in message
    assert "Traceback" not in message and info.value.__suppress_context__


def test_a_stale_cached_file_is_named_when_offline(offline_env, monkeypatch):
    monkeypatch.setenv(pretrained.BASE_URL_ENV, _dead_url())
    target = offline_env / "shiptoolkit" / FNAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a download")
    with pytest.raises(WeightsError, match=f"had md5 {hashlib.md5(b'half a download').hexdigest()}.*not used"):
        pretrained.imagenet_weights_path("resnet18")


def test_the_base_url_and_the_table():
    assert pretrained.weights_url("resnet34") == (
        "https://github.com/qubvel/classification_models/releases/download/0.0.1/resnet34_imagenet_1000_no_top.h5")
    # classification_models' weights.py, include_top=False
    assert {k: v for k, v in pretrained.IMAGENET_WEIGHTS.items() if k.startswith("resnet")} == {
        "resnet18": ("resnet18_imagenet_1000_no_top.h5", "318e3ac0cd98d51e917526c9f62f0b50"),
        "resnet34": ("resnet34_imagenet_1000_no_top.h5", "8caaa0ad39d927cb8ba5385bf945d582"),
        "resnet50": ("resnet50_imagenet_1000_no_top.h5", "db3b217156506944570ac220086f09b6"),
        "resnet101": ("resnet101_imagenet_1000_no_top.h5", "1016e7663980d5597a4e224d915c342d"),
        "resnet152": ("resnet152_imagenet_1000_no_top.h5", "5867b94098df4640918941115db93734"),
    }
    with pytest.raises(WeightsError, match='"imagenet" is available for .*resnet18, resnet34.*encoder=\'vgg16\''):
        pretrained.weights_url("vgg16")


def test_the_base_url_can_be_a_mirror(monkeypatch):
    monkeypatch.setenv(pretrained.BASE_URL_ENV, "file:///mirror/weights")
    assert pretrained.weights_url("resnet18") == "file:///mirror/weights/resnet18_imagenet_1000_no_top.h5"


@pytest.mark.parametrize("kind, name", [("backbone", "resnet34_unet"), ("backbone", "resnet18_unet"),
                                        ("classifier", "resnet34_classifier"), ("classifier", "resnet18_classifier")])
def test_the_component_reference_documents_imagenet(kind, name):
    doc = {p.name: p.doc for p in get_registry(kind).get(name).params}["encoder_weights"]
    assert '"imagenet"' in doc and ".h5" in doc
    get_registry(kind).check_params(name, {"encoder_weights": "imagenet"})


def test_a_file_url_mirror_works(offline_env, fake_imagenet, monkeypatch):
    monkeypatch.setenv(pretrained.BASE_URL_ENV, fake_imagenet[0].as_uri())  # no trailing slash: one is added
    path = pretrained.imagenet_weights_path("resnet18")
    assert path == offline_env / "shiptoolkit" / FNAME and path.read_bytes() == (fake_imagenet[0] / FNAME).read_bytes()
