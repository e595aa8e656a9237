"""The example experiment files that ship with shiptoolkit, by name: `shiptoolkit run quickstart`.

A wheel carries the repository's `examples/*.toml` as `shiptoolkit/examples/` (pyproject.toml maps
that package onto `examples/`, so there is one copy of each file). In a source checkout, where
`shiptoolkit/examples/` does not exist, the checkout's own `examples/` folder is used.

Example:
    >>> "quickstart" in example_names()
    True
"""

from __future__ import annotations

from pathlib import Path

from shiptoolkit.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent.parent  # shiptoolkit/, this module being shiptoolkit/config/


def examples_dir() -> Path | None:
    """The folder of the packaged example TOMLs (installed wheel), else the source checkout's `examples/`."""
    packaged = _PACKAGE / "examples"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "examples").is_dir():
        return checkout / "examples"
    return None


def example_names() -> list[str]:
    """Names of the packaged example configs (file names without `.toml`), sorted."""
    folder = examples_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder else []


def example_path(name: str) -> Path | None:
    """The packaged example called `name` ("quickstart" or "quickstart.toml"), or None."""
    folder = examples_dir()
    if folder is None or Path(name).name != name:  # a path with folders is a path, never a name
        return None
    path = folder / f"{name.removesuffix('.toml')}.toml"
    return path if path.is_file() else None


def resolve_config_path(source: str | Path) -> Path:
    """An existing config file, or the packaged example of that name.

    Raises:
        ConfigError: neither exists; the message lists the packaged example names.
    """
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"Config {str(path)!r} is a folder: give a .toml file.")
    example = example_path(str(source))
    if example is not None:
        return example
    names = example_names()
    hint = f" Packaged examples (run them by name): {', '.join(names)}." if names else ""
    raise ConfigError(f"Config file {str(path)!r} not found.{hint}")
