"""Samplers: the (image, mask) pairs training sees. Built-ins register through the plugin hook."""

from shiptoolkit.hookspecs import hookimpl


@hookimpl
def register_samplers(register):
    """Built-in samplers (added by the samplers issue)."""
