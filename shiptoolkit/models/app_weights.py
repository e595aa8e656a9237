"""keras.applications' own ImageNet weights files (without top) for the encoders wrapping them.

File names, URLs and hashes are those of Keras 3.15's `keras/src/applications/*.py` (the files
`keras.applications.X(weights="imagenet", include_top=False)` downloads): Keras 2 `.h5` weights
files. The hash is an md5 (32 hex digits) or a sha256 (64) as Keras gives it; Keras gives none for
MobileNetV2 (None here: such a file is used unchecked, and `applications.load_imagenet` still
refuses one whose layers do not fit). `pretrained.py` downloads and caches them like
classification_models' files. No Keras import: this module is data.
"""

from __future__ import annotations

_GCS = "https://storage.googleapis.com/"
_APPS = _GCS + "tensorflow/keras-applications/"

_EFFICIENTNET_MD5 = ("50bc09e76180e00e4465e1a485ddc09d", "74c4e6b3e1f6a1eea24c589628592432",
                     "111f8e2ac8aa800a7a99e3239f7bfb39", "af6d107764bb5b1abb91932881670226",
                     "ebc24e6d6c33eaebbd558eafbeedf1ba", "38879255a25d3c92d5e44e04ae6cec6f",
                     "9ecce42647a20130c1f39a5d4cb75743", "cbcfe4450ddf6f3ad90b1b398090fe4a")
_EFFICIENTNETV2_MD5 = {"b0": "893217f2bb855e2983157299931e43ff", "b1": "0e80663031ca32d657f9caa404b6ec37",
                       "b2": "1dfe2e7a5d45b6632553a8961ea609eb", "b3": "f6abf7b5849ac99a89b50dd3fd532856",
                       "s": "af0682fb74e8c54910f2d4393339c070"}

# {encoder: (file name, hash or None, the base URL the file name is appended to)}
APPLICATION_WEIGHTS: dict[str, tuple[str, str | None, str]] = {
    **{f"efficientnetb{i}": (f"efficientnetb{i}_notop.h5", md5, _GCS + "keras-applications/")
       for i, md5 in enumerate(_EFFICIENTNET_MD5)},
    **{f"efficientnetv2{v}": (f"efficientnetv2-{v}_notop.h5", md5, _APPS + "efficientnet_v2/")
       for v, md5 in _EFFICIENTNETV2_MD5.items()},
    "mobilenetv2": ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", None,
                    _APPS + "mobilenet_v2/"),
    "mobilenetv3large": ("weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
                         "07fb09a5933dd0c8eaafa16978110389", _APPS + "mobilenet_v3/"),
    "mobilenetv3small": ("weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                         "d3e8ec802a04aa4fc771ee12a9a9b836", _APPS + "mobilenet_v3/"),
    "densenet121": ("densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "30ee3e1110167f948a6b9946edeeb738",
                    _APPS + "densenet/"),
    "densenet169": ("densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5", "b8c4d4c20dd625c148057b9ff1c1176b",
                    _APPS + "densenet/"),
    "densenet201": ("densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5", "c13680b51ded0fb44dff2d8f86ac8bb1",
                    _APPS + "densenet/"),
    "convnext_tiny": ("convnext_tiny_notop.h5",
                      "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1", _APPS + "convnext/"),
    "convnext_small": ("convnext_small_notop.h5",
                       "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab", _APPS + "convnext/"),
}
