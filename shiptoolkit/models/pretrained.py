"""ImageNet weights for the ResNet encoder: `encoder_weights="imagenet"`, as in segmentation-models.

The files are classification_models' ResNets without their top, the ones segmentation-models
downloads: Keras 2 `.h5` weights files, read by `legacy_h5.py` and loaded by layer name. They are
downloaded once with `keras.utils.get_file`, checked against their md5 and kept in
`~/.keras/shiptoolkit/` (the Keras home: `$KERAS_HOME` if set); a cached file with the right hash
is used without the network. The keras.applications encoders' files (`app_weights.py`: Keras's
own, from Google's storage, md5 or sha256 as Keras checks them) are handled the same way. Two
environment variables move them:

- `SHIPTOOLKIT_WEIGHTS_URL`: the base URL the file names are appended to, instead of
  classification_models' GitHub release or Keras's folder (a mirror of both, holding the files
  under their names; `file:///some/folder/` works too).
- `SHIPTOOLKIT_WEIGHTS_CACHE`: the folder used instead of the Keras home (the files go to its
  `shiptoolkit/` subfolder).

Keras is imported inside `imagenet_weights_path` only, so this module stays light.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shiptoolkit.models.app_weights import APPLICATION_WEIGHTS
from shiptoolkit.models.legacy_h5 import WeightsError

# The value of `encoder_weights` that asks for these files.
IMAGENET = "imagenet"
# {encoder: (file name, md5)}: classification_models' WEIGHTS_COLLECTION (classification_models/weights.py),
# include_top=False. The resnet18 file is named as its URL: the table there names it like the file
# *with* top ("resnet18_imagenet_1000.h5"), the same md5 as the no-top URL.
IMAGENET_WEIGHTS: dict[str, tuple[str, str]] = {
    "resnet18": ("resnet18_imagenet_1000_no_top.h5", "318e3ac0cd98d51e917526c9f62f0b50"),
    "resnet34": ("resnet34_imagenet_1000_no_top.h5", "8caaa0ad39d927cb8ba5385bf945d582"),
    "resnet50": ("resnet50_imagenet_1000_no_top.h5", "db3b217156506944570ac220086f09b6"),
    "resnet101": ("resnet101_imagenet_1000_no_top.h5", "1016e7663980d5597a4e224d915c342d"),
    "resnet152": ("resnet152_imagenet_1000_no_top.h5", "5867b94098df4640918941115db93734"),
}
DEFAULT_BASE_URL = "https://github.com/qubvel/classification_models/releases/download/0.0.1/"
BASE_URL_ENV = "SHIPTOOLKIT_WEIGHTS_URL"
CACHE_ENV = "SHIPTOOLKIT_WEIGHTS_CACHE"
CACHE_SUBDIR = "shiptoolkit"


def weights_url(encoder: str) -> str:
    """Where `encoder`'s ImageNet file is downloaded from (`$SHIPTOOLKIT_WEIGHTS_URL` + its file name)."""
    fname, _, default = _entry(encoder)
    base = os.environ.get(BASE_URL_ENV) or default
    return base.rstrip("/") + "/" + fname


def cache_dir() -> Path:
    """The folder whose `shiptoolkit/` subfolder holds the files: `$SHIPTOOLKIT_WEIGHTS_CACHE`, else the
    Keras home (`$KERAS_HOME`, else `~/.keras`, else `/tmp/.keras` where the home is not writable)."""
    for env in (CACHE_ENV, "KERAS_HOME"):
        if os.environ.get(env):
            return Path(os.environ[env]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def cached_path(encoder: str, cache: str | Path | None = None) -> Path:
    """Where `encoder`'s ImageNet file is (or will be) kept: put it there by hand to work offline."""
    root = (Path(cache) if cache else cache_dir()).expanduser()
    return (root / CACHE_SUBDIR if not root.exists() else _target_dir(root)) / _entry(encoder)[0]


def imagenet_weights_path(encoder: str, cache: str | Path | None = None) -> Path:
    """The local path of `encoder`'s ImageNet weights, downloaded and md5-checked on first use.

    Args:
        encoder: "resnet18", "resnet34", "resnet50", "resnet101" or "resnet152" (a key of `IMAGENET_WEIGHTS`).
            Or a key of `APPLICATION_WEIGHTS` (keras.applications' files: md5, sha256 or no hash).
        cache: the folder used instead of `cache_dir()`.

    Raises:
        WeightsError: offline or a failed download (saying where to put the file by hand), or a file
            whose md5 is not the expected one (it is not used).
    """
    import keras

    fname, md5, default = _entry(encoder)
    url, algorithm = weights_url(encoder), _algorithm(md5)
    root = Path(cache) if cache else cache_dir()
    try:  # Keras falls back to /tmp/.keras for a folder that does not exist yet
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    target = _target_dir(root) / fname
    stale = _md5(target, algorithm) if target.is_file() else None
    if stale is not None and (md5 is None or stale == md5):  # the cached file (or one put there by hand): no network
        return target
    try:  # downloads, also over a cached file with a wrong hash
        path = keras.utils.get_file(fname, url, file_hash=md5, hash_algorithm=algorithm, cache_subdir=CACHE_SUBDIR,
                                    cache_dir=str(root))
    except Exception as exc:  # noqa: BLE001 - Keras raises bare Exception for a failed download
        if target.is_file():  # downloaded, but not the expected file
            found = _md5(target, algorithm)
            if md5 and found != md5:
                target.unlink(missing_ok=True)
                raise WeightsError(
                    f"The {encoder} ImageNet weights downloaded from {url} have {algorithm} {found}, expected {md5}: "
                    f"the file was not used (and was removed from {target.parent}). "
                    + (f"Is {BASE_URL_ENV} a mirror of {default}?" if os.environ.get(BASE_URL_ENV)
                       else "A broken download: try again.")) from None
        note = (f" The file that was there had {algorithm} {stale}, expected {md5}: it was not used."
                if stale and md5 and stale != md5 else "")
        checked = f" ({algorithm} {md5})" if md5 else ""
        raise WeightsError(
            f"Could not download the {encoder} ImageNet weights ({_reason(exc)}).{note} To work offline, download "
            f"{url} elsewhere and put it at {target}{checked}; it is then used without the network. Or set "
            f"{BASE_URL_ENV} to a mirror's base URL, or give encoder_weights the path of a local .h5 file."
        ) from None
    return Path(path)


def _entry(encoder: str) -> tuple[str, str | None, str]:
    """(file name, hash or None, default base URL) of `encoder`'s ImageNet file."""
    if encoder in IMAGENET_WEIGHTS:
        return (*IMAGENET_WEIGHTS[encoder], DEFAULT_BASE_URL)
    if encoder not in APPLICATION_WEIGHTS:
        known = [*sorted(IMAGENET_WEIGHTS), *sorted(APPLICATION_WEIGHTS)]
        raise WeightsError(f'encoder_weights="{IMAGENET}" is available for {", ".join(known)}. '
                           f"Received: encoder={encoder!r}")
    return APPLICATION_WEIGHTS[encoder]


def _algorithm(file_hash: str | None) -> str:
    """Keras's name of the hash: sha256 for 64 hex digits (as Keras's "auto"), else md5."""
    return "sha256" if file_hash and len(file_hash) == 64 else "md5"


def _target_dir(root: Path) -> Path:
    """The folder `keras.utils.get_file` writes to for `cache_dir=root` (it has the same fallback)."""
    root = root.expanduser()
    return (root if os.access(root, os.W_OK) else Path("/tmp") / ".keras") / CACHE_SUBDIR


def _md5(path: Path, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."
