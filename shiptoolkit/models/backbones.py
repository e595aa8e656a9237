"""Segmentation models. Built-ins register through the same plugin hook as third-party ones."""

from shiptoolkit.models.encoder_facts import BUILTIN_FACTS, FACTS_ATTR
from shiptoolkit.plugins.hookspecs import hookimpl


@hookimpl
def register_backbones(register):
    # Imported here, not at the top: they import Keras, and `import shiptoolkit` must not.
    # `unet` is architectures' (the seed's plain U-Net without `encoder`, sm's Unet with one).
    from shiptoolkit.models.architectures import ARCHITECTURES
    from shiptoolkit.models.resnet_unet import RESNET_UNETS

    for factory in (*ARCHITECTURES, *RESNET_UNETS):
        register(factory.__name__, factory)


@hookimpl
def register_encoders(register):
    from shiptoolkit.models.app_encoders import APPLICATION_ENCODERS
    from shiptoolkit.models.encoders import RESNET_ENCODERS

    for factory in (*RESNET_ENCODERS, *APPLICATION_ENCODERS):
        setattr(factory, FACTS_ATTR, BUILTIN_FACTS[factory.__name__])  # the docs' table reads these
        register(factory.__name__, factory)
