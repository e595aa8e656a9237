"""Declared facts about each registered encoder, for the docs' table and `shiptoolkit components`.

Building all encoders to count their parameters takes minutes on a CPU (EfficientNetB7 alone
seconds), so each built-in factory carries its facts as an attribute (`encoder_facts`, set when
`register_encoders` registers it), and tests/test_encoders.py checks every declared fact against
the built graph. A plugin's encoder may set the same attribute on its factory:

    my_encoder.encoder_facts = EncoderFacts(params=1_234_567, skip_strides=(2, 4, 8, 16))

Without it the reference shows "-" cells. No Keras import: this module is data.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiptoolkit.models.app_weights import APPLICATION_WEIGHTS
from shiptoolkit.models.pretrained import IMAGENET_WEIGHTS

FACTS_ATTR = "encoder_facts"
MISSING = "-"


@dataclass(frozen=True)
class EncoderFacts:
    """What the docs say about one encoder, checked against its built graph by the tests."""

    params: int  # parameters of the encoder alone (input to its deepest output) with 3 bands
    skip_strides: tuple[int, ...]  # strides of its skip features, shallowest first (ConvNeXt: no 2)
    output_stride: int = 32  # stride of its deepest output
    weights: str = ""  # where `encoder_weights = "imagenet"` comes from ("" = no ImageNet weights)

    def strides_text(self) -> str:
        """e.g. "2, 4, 8, 16 + 32": the skips' strides + the output's."""
        return f"{', '.join(map(str, self.skip_strides))} + {self.output_stride}"


def imagenet_source(encoder: str) -> str:
    """Where a built-in encoder's ImageNet file comes from and how it is checked, from `pretrained.py`'s tables."""
    if encoder in IMAGENET_WEIGHTS:
        return "classification_models, md5-checked"
    if encoder in APPLICATION_WEIGHTS:
        file_hash = APPLICATION_WEIGHTS[encoder][1]
        if file_hash is None:
            return "keras.applications, not hash-checked (Keras gives no hash)"
        return f"keras.applications, {'sha256' if len(file_hash) == 64 else 'md5'}-checked"
    return ""


_ALL = (2, 4, 8, 16)
# {encoder: (parameters at 3 bands, skip strides)}: measured from the built graphs (Keras 3),
# checked by tests/test_encoders.py.
_MEASURED: dict[str, tuple[int, tuple[int, ...]]] = {
    "resnet18": (11_186_889, _ALL), "resnet34": (21_302_473, _ALL), "resnet50": (23_546_057, _ALL),
    "resnet101": (42_590_409, _ALL), "resnet152": (58_280_137, _ALL),
    "efficientnetb0": (4_049_571, _ALL), "efficientnetb1": (6_575_239, _ALL), "efficientnetb2": (7_768_569, _ALL),
    "efficientnetb3": (10_783_535, _ALL), "efficientnetb4": (17_673_823, _ALL),
    "efficientnetb5": (28_513_527, _ALL), "efficientnetb6": (40_960_143, _ALL),
    "efficientnetb7": (64_097_687, _ALL),
    "efficientnetv2b0": (5_919_312, _ALL), "efficientnetv2b1": (6_931_124, _ALL),
    "efficientnetv2b2": (8_769_374, _ALL), "efficientnetv2b3": (12_930_622, _ALL),
    "efficientnetv2s": (20_331_360, _ALL),
    "mobilenetv2": (2_257_984, _ALL), "mobilenetv3large": (2_996_352, _ALL), "mobilenetv3small": (939_120, _ALL),
    "densenet121": (7_037_504, _ALL), "densenet169": (12_642_880, _ALL), "densenet201": (18_321_984, _ALL),
    "convnext_tiny": (27_820_128, (4, 8, 16)), "convnext_small": (49_454_688, (4, 8, 16)),
}
BUILTIN_FACTS: dict[str, EncoderFacts] = {
    name: EncoderFacts(params, strides, weights=imagenet_source(name)) for name, (params, strides) in _MEASURED.items()
}


def facts_of(factory: object) -> EncoderFacts | None:
    """The facts an encoder factory declares (its `encoder_facts` attribute), or None."""
    facts = getattr(factory, FACTS_ATTR, None)
    return facts if isinstance(facts, EncoderFacts) else None


def facts_cells(factory: object) -> tuple[str, str, str]:
    """(parameters, ImageNet weights, skip strides) as table cells; "-" for what is not declared."""
    facts = facts_of(factory)
    if facts is None:
        return MISSING, MISSING, MISSING
    return f"{facts.params:,}", facts.weights or "none", facts.strides_text()
