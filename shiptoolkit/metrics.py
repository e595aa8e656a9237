"""Metrics. Built-ins register through the plugin hook."""

from shiptoolkit.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    """Built-in metrics (added by the metrics issue)."""
