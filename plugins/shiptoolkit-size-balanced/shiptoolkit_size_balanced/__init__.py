"""shiptoolkit plugin adding the `size_balanced` sampler.

Installed with `pip install ./plugins/shiptoolkit-size-balanced`, it is found through the
entry-point group "shiptoolkit"; shiptoolkit then calls the hooks below.
"""

import shiptoolkit
from shiptoolkit_size_balanced.sampler import SizeBalancedSampler

__all__ = ["SizeBalancedSampler", "register_samplers"]


@shiptoolkit.hookimpl
def register_samplers(register):
    register("size_balanced", SizeBalancedSampler)
