"""shiptoolkit plugin adding the `size_balanced` sampler and the `size-histogram` command.

Installed with `pip install ./plugins/shiptoolkit-size-balanced`, it is found through the
entry-point group "shiptoolkit"; shiptoolkit then calls the hooks below.
"""

import shiptoolkit
from shiptoolkit_size_balanced.histogram import size_histogram
from shiptoolkit_size_balanced.sampler import SizeBalancedSampler

__all__ = ["SizeBalancedSampler", "register_commands", "register_samplers", "size_histogram"]


@shiptoolkit.hookimpl
def register_samplers(register):
    register("size_balanced", SizeBalancedSampler)


@shiptoolkit.hookimpl
def register_commands(cli):
    cli.add_command(size_histogram)  # `shiptoolkit size-histogram DATASET`
