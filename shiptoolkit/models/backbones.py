"""Segmentation models. Built-ins register through the same plugin hook as third-party ones."""

from shiptoolkit.plugins.hookspecs import hookimpl


@hookimpl
def register_backbones(register):
    # Imported here, not at the top: they import Keras, and `import shiptoolkit` must not.
    from shiptoolkit.models.resnet_unet import RESNET_UNETS
    from shiptoolkit.models.unet import unet

    for factory in (unet, *RESNET_UNETS):
        register(factory.__name__, factory)
