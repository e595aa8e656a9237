"""Losses in `keras.ops`. Built-ins register through the plugin hook."""

from shiptoolkit.hookspecs import hookimpl


@hookimpl
def register_losses(register):
    """Built-in losses (added by the losses issue)."""
