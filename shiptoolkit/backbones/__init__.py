"""Segmentation models. Built-ins register through the plugin hook."""

from shiptoolkit.hookspecs import hookimpl


@hookimpl
def register_backbones(register):
    """Built-in backbones (added by the backbones issue)."""
