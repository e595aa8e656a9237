"""Samplers: the (image, mask) pairs training sees. Built-ins register through the plugin hook."""

from shiptoolkit.plugins.hookspecs import hookimpl
from shiptoolkit.samplers.full_images import FullImageSampler
from shiptoolkit.samplers.mixed import MixedSampler
from shiptoolkit.samplers.ship_patches import ShipPatchSampler


@hookimpl
def register_samplers(register):
    register("ship_patches", ShipPatchSampler)
    register("mixed", MixedSampler)
    register("full_images", FullImageSampler)
