"""The plugin manager: built-ins, installed packages (entry points) and local modules.

Registries are filled lazily by calling each plugin's hooks, so commands that need no
components (`synth`, `data check`) never import TensorFlow.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from shiptoolkit.errors import PluginError, ShiptoolkitError
from shiptoolkit.plugins import hookspecs
from shiptoolkit.plugins.registry import Registry

DEFAULT_PLUGINS = (
    "shiptoolkit.samplers",
    "shiptoolkit.models.backbones",
    "shiptoolkit.models.losses",
    "shiptoolkit.scoring.metrics",
    "shiptoolkit.models.classifiers",
)

# kind -> (hook name, parameters the framework passes itself and users never configure)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sampler": ("register_samplers", ("index", "seed")),  # seeds come from run.seed
    "backbone": ("register_backbones", ("input_shape",)),
    "encoder": ("register_encoders", ("input_shape", "model_name")),  # passed by the architectures
    "loss": ("register_losses", ()),
    "metric": ("register_metrics", ()),
    "classifier": ("register_classifiers", ("input_shape",)),
    "callback": ("register_callbacks", ("config", "run_dir", "stage")),  # chosen by train.callbacks
}

pm = pluggy.PluginManager("shiptoolkit")
pm.add_hookspecs(hookspecs)
_registries: dict[str, Registry] | None = None
_builtins_loaded = False
_installed_loaded = False


def load_plugins() -> None:
    """Load built-ins and installed plugins once; `SHIPTOOLKIT_LOAD_PLUGINS` narrows the latter.

    `SHIPTOOLKIT_LOAD_PLUGINS` is a comma-separated list of distribution names to load; an empty
    value loads none (built-ins are always loaded).
    """
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(name), name=name)
    load_installed_plugins()


def load_installed_plugins() -> None:
    """Load the installed plugins (entry-point group "shiptoolkit") once, without the built-ins.

    The CLI looks for plugin commands with this alone: the built-ins import Keras and add no
    command, so `shiptoolkit --help` stays fast. Hooks see built-ins first whatever the load order.
    """
    global _installed_loaded
    if _installed_loaded:
        return
    _installed_loaded = True
    wanted = os.environ.get("SHIPTOOLKIT_LOAD_PLUGINS")
    if wanted is None:
        try:
            pm.load_setuptools_entrypoints("shiptoolkit")
        except Exception as exc:  # a broken installed plugin must name itself
            raise PluginError(f"An installed shiptoolkit plugin failed to load: {exc!r}. {KNOWN_HOOKS}. "
                              "Set SHIPTOOLKIT_LOAD_PLUGINS='' to start without plugins.") from exc
        for plugin, dist in pm.list_plugin_distinfo():  # a misspelled hook loads in pluggy, and does nothing
            problem = hook_problem(plugin, pm.get_name(plugin) or repr(plugin))
            if problem:
                pm.unregister(plugin)
                raise PluginError(f"{problem} (installed by {dist.project_name}; SHIPTOOLKIT_LOAD_PLUGINS='' starts "
                                  "without installed plugins).")
        return
    from importlib.metadata import entry_points

    names = {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group="shiptoolkit"):
        if (ep.dist is not None and ep.dist.name in names or ep.name in names) and pm.get_plugin(ep.name) is None:
            try:
                loaded = ep.load()
            except Exception as exc:
                raise PluginError(f"Plugin {ep.name!r} failed to load: {exc!r}") from exc
            _register(loaded, ep.name)


def hook_implementations(hook_name: str) -> list[tuple[str, Callable[..., Any]]]:
    """(plugin name, a function calling its implementation) of every plugin implementing `hook_name`:
    built-ins first, then the others in load order.

    Each function takes the hook's arguments as keywords and passes on those the implementation
    declares (pluggy's rule: it may accept fewer). A plugin that raises becomes a `PluginError`
    naming it and the hook.
    """
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    named = [(pm.get_name(impl.plugin) or repr(impl.plugin), impl) for impl in impls]
    named.sort(key=lambda pair: pair[0] not in DEFAULT_PLUGINS)  # stable: load order otherwise

    def caller(plugin_name: str, impl: Any) -> Callable[..., Any]:
        def call(**kwargs: Any) -> Any:
            try:
                return impl.function(*[kwargs[arg] for arg in impl.argnames])
            except ShiptoolkitError:
                raise
            except Exception as exc:
                raise PluginError(f"Plugin {plugin_name!r} raised in {hook_name}: {exc!r}") from exc
        return call

    return [(name, caller(name, impl)) for name, impl in named]


def local_plugin_name(spec: str, base_dir: Path | None = None) -> str:
    """The name a local plugin `spec` is registered under (`local:<resolved path>` for a file)."""
    if not spec.endswith(".py"):
        return spec
    path = Path(spec)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return f"local:{path.resolve()}"


def is_loaded(spec: str, base_dir: Path | None = None) -> bool:
    return pm.get_plugin(local_plugin_name(spec, base_dir)) is not None


def load_local_plugin(spec: str, base_dir: Path | None = None) -> str:
    """Register a local plugin: `path/to/file.py`, `package.module` or `package.module:attr`.

    Returns the name it was registered under. Relative file paths resolve against `base_dir`.
    """
    load_plugins()
    module: Any
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            base = "" if Path(spec).is_absolute() else (
                f": a relative [plugins] path is relative to the config file's folder, {base_dir}" if base_dir
                else f": a relative --plugin path is relative to the working directory, {Path.cwd()}")
            raise PluginError(f"Plugin file {spec!r} not found (looked at {path.absolute()}{base}).")
        name = local_plugin_name(spec, base_dir)
        if pm.get_plugin(name) is not None:
            return name
        module = _import_file(path, name)
    else:
        module_name, _, attr = spec.partition(":")
        name = spec
        if pm.get_plugin(name) is not None:
            return name
        try:
            module = importlib.import_module(module_name)
            module = getattr(module, attr) if attr else module
        except Exception as exc:
            raise PluginError(f"Plugin {spec!r} failed to import: {exc!r}") from exc
    _register(module, name)
    invalidate()
    return name


def _import_file(path: Path, name: str) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(f"shiptoolkit_local_{path.stem}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"Plugin file {str(path)!r} raised while loading: {exc!r}") from exc
    sys.modules[module_spec.name] = module
    return module


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register an in-process plugin object (module or class with hookimpls); returns its name.

    Raises:
        PluginError: `plugin` is None, or one of its hooks is unknown (misspelled), takes arguments
            its hook does not pass, or lacks `@shiptoolkit.hookimpl`; nothing is registered then.
    """
    if plugin is None:
        raise PluginError("register_plugin() got None: pass a module, class or object whose hook functions are "
                          f"marked with @shiptoolkit.hookimpl. {KNOWN_HOOKS}.")
    load_plugins()
    registered = _register(plugin, name)
    invalidate()
    return registered


# The hooks a plugin may implement, as a message ends: "Known hooks: register_samplers(register), ...".
HOOKS = {name: [p for p in inspect.signature(getattr(hookspecs, name)).parameters]
         for name in dir(hookspecs) if name.startswith("register_") and callable(getattr(hookspecs, name))}
KNOWN_HOOKS = "Known hooks: " + ", ".join(f"{name}({', '.join(args)})" for name, args in HOOKS.items())


def _register(plugin: object, name: str | None) -> str:
    """`pm.register`, refusing (before anything is registered) a plugin whose hooks are wrong."""
    shown = name or pm.get_canonical_name(plugin)
    problem = hook_problem(plugin, shown)
    if problem:
        raise PluginError(f"{problem}.")
    try:
        return str(pm.register(plugin, name=name))
    except pluggy.PluginValidationError as exc:  # what hook_problem does not foresee
        raise PluginError(f"Plugin {shown!r} has a hook shiptoolkit cannot call: {exc}. {KNOWN_HOOKS}.") from None


def hook_problem(plugin: object, name: str) -> str | None:
    """Why `plugin`'s hooks cannot work, or None: an implementation of a hook that does not exist (a
    typo pluggy would keep silently), one taking arguments its hook does not pass, or a function
    named like a hook without `@shiptoolkit.hookimpl` (pluggy ignores it). The message names the
    plugin, the hook and the known hooks."""
    for attr in dir(plugin):
        try:
            opts = pm.parse_hookimpl_opts(plugin, attr)
            function = getattr(plugin, attr)
        except Exception:  # an attribute that cannot be read is no hook
            continue
        if opts is None:
            if attr in HOOKS and callable(function) and _defined_by(function, plugin):
                return (f"Plugin {name!r}: {attr}() is not marked with @shiptoolkit.hookimpl, so it is never "
                        f"called. Decorate it. {KNOWN_HOOKS}")
            continue
        hook = opts.get("specname") or attr
        if hook not in HOOKS:
            close = difflib.get_close_matches(hook, list(HOOKS), n=1)
            tip = f" Did you mean {close[0]!r}?" if close else ""
            return f"Plugin {name!r} implements the unknown hook {hook!r}.{tip} {KNOWN_HOOKS}"
        try:
            args = [p for p in inspect.signature(function).parameters]
        except (TypeError, ValueError):
            continue
        args = args[1:] if args[:1] in (["self"], ["cls"]) else args  # a class's own (unbound) function
        extra = [a for a in args if a not in HOOKS[hook]]
        if extra:
            return (f"Plugin {name!r}: its {hook}({', '.join(args)}) takes {', '.join(map(repr, extra))}, which the "
                    f"hook does not pass: the hook is {hook}({', '.join(HOOKS[hook])}) (an implementation may take "
                    f"fewer arguments, not others). {KNOWN_HOOKS}")
    return None


def _defined_by(function: Any, plugin: object) -> bool:
    """Whether a module plugin defines `function` itself (not imports it); always for a class or an object."""
    if not isinstance(plugin, ModuleType):
        return True
    return getattr(function, "__module__", None) == plugin.__name__


def unregister_plugin(name: str) -> None:
    pm.unregister(name=name)
    invalidate()


def invalidate() -> None:
    """Forget built registries; the next access calls the hooks again."""
    global _registries
    _registries = None


def registries() -> dict[str, Registry]:
    """All registries, filled by calling every plugin's register hooks."""
    global _registries
    if _registries is None:
        load_plugins()
        built = {}
        for kind, (hook_name, reserved) in KINDS.items():
            registry = Registry(kind, reserved)
            for plugin_name, call in hook_implementations(hook_name):

                def register(name, factory=None, override=False, _p=plugin_name, _r=registry):
                    return _r.register(name, factory, override=override, plugin=_p)

                call(register=register)
            built[kind] = registry
        _registries = built
    return _registries


def get_registry(kind: str) -> Registry:
    """The registry of one kind: 'sampler', 'backbone', 'encoder', 'loss', 'metric', 'classifier' or 'callback'."""
    regs = registries()
    if kind not in regs:
        raise KeyError(f"Unknown component kind {kind!r}. Known kinds: {', '.join(regs)}.")
    return regs[kind]


def plugin_info() -> list[dict[str, Any]]:
    """Name, version and hooks of each loaded plugin, plus the components it registered."""
    regs = registries()
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    out = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        components = {kind: [c.name for c in reg if c.plugin == name] for kind, reg in regs.items()}
        out.append({"name": name, "version": dist.version if dist else None,
                    "builtin": name in DEFAULT_PLUGINS, "hooks": hooks,
                    "components": {k: v for k, v in components.items() if v}})
    return sorted(out, key=lambda d: (not d["builtin"], d["name"]))
