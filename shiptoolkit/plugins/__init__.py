"""Plugins and the component registries they fill: how every sampler, backbone, loss and metric gets a name.

`hookspecs` declares the hooks (`@shiptoolkit.hookimpl` marks an implementation); `manager` loads
the built-ins, installed packages (entry points) and local modules through the same hooks and
fills one `registry.Registry` per component kind; `contracts` builds components with the
plugin's name on every failure and holds samplers to their contract; `docstrings` reads the
`Args:` sections that document component parameters. The lowest layer above `shiptoolkit.errors`.
"""

from shiptoolkit.plugins.manager import (
    DEFAULT_PLUGINS,
    KINDS,
    get_registry,
    hook_implementations,
    invalidate,
    is_loaded,
    load_installed_plugins,
    load_local_plugin,
    load_plugins,
    local_plugin_name,
    plugin_info,
    pm,
    register_plugin,
    registries,
    unregister_plugin,
)

__all__ = ["DEFAULT_PLUGINS", "KINDS", "get_registry", "hook_implementations", "invalidate", "is_loaded",
           "load_installed_plugins", "load_local_plugin", "load_plugins", "local_plugin_name", "plugin_info", "pm",
           "register_plugin", "registries", "unregister_plugin"]
