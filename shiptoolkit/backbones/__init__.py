"""Segmentation models. Built-ins register through the same plugin hook as third-party ones."""

from shiptoolkit.hookspecs import hookimpl


@hookimpl
def register_backbones(register):
    from shiptoolkit.backbones.resnet_unet import resnet18_unet, resnet34_unet
    from shiptoolkit.backbones.unet import unet

    register("unet", unet)
    register("resnet34_unet", resnet34_unet)
    register("resnet18_unet", resnet18_unet)
