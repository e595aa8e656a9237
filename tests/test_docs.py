"""The docs: references generated from the code cover every component; the site builds and renders."""

import http.server
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from shiptoolkit.cli import reference
from shiptoolkit.config import SCHEMA
from shiptoolkit.plugins import KINDS, get_registry, hookspecs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_registered_component_is_in_the_reference(kind):
    text = reference.components_markdown()
    for component in get_registry(kind):
        assert f"### `{component.name}`" in text
        for param in component.params:
            assert f"| `{param.name}` |" in text


def test_plugin_components_appear_too(plugin_cleanup):
    import shiptoolkit

    class Extra:
        @shiptoolkit.hookimpl
        def register_losses(self, register):
            register("zero_loss", lambda scale=1.0: scale)

    plugin_cleanup.append(shiptoolkit.register_plugin(Extra(), name="extra_docs_plugin"))
    assert "### `zero_loss`" in reference.components_markdown()
    assert "Provided by plugin `extra_docs_plugin`" in reference.components_markdown()


def test_the_encoder_table_reads_declared_facts_and_a_plugin_encoder_without_them_shows_dashes(plugin_cleanup):
    import shiptoolkit
    from shiptoolkit.cli import cli

    class Extra:
        @shiptoolkit.hookimpl
        def register_encoders(self, register):
            register("tiny_docs_encoder", lambda input_shape=(None, None, 3), model_name="x": None)

    plugin_cleanup.append(shiptoolkit.register_plugin(Extra(), name="extra_encoder_plugin"))
    text = reference.components_markdown()
    assert "| encoder | parameters | ImageNet weights | skip strides |" in text
    assert "| `resnet34` | 21,302,473 | classification_models, md5-checked | 2, 4, 8, 16 + 32 |" in text
    assert "| `convnext_tiny` | 27,820,128 | keras.applications, sha256-checked | 4, 8, 16 + 32 |" in text
    assert "| `tiny_docs_encoder` | - | - | - |" in text
    assert "Architectures taking an `encoder`" in text and "`fpn`, `linknet`, `pspnet`, `unet`" in text
    from click.testing import CliRunner

    out = CliRunner().invoke(cli, ["components", "encoder", "--no-params", "--pattern", "*3small"]).output
    assert "939,120 parameters; ImageNet weights: keras.applications, md5-checked; skip strides 2, 4, 8, 16 + 32" in out


def test_every_config_key_and_cli_command_is_documented():
    text = reference.config_markdown()
    for section in SCHEMA.values():
        assert f"## `[{section.name}]`" in text
        for key in section.keys:
            assert f"| `{key.name}` |" in text
    cli_text = reference.cli_markdown()
    for command in ("run", "train", "predict", "score", "submission merge", "synth", "data check", "components",
                    "plugins"):
        assert f"`shiptoolkit {command}`" in cli_text


def test_every_hook_is_in_the_docs():
    docs = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    docs += (ROOT / "plugins" / "shiptoolkit-size-balanced" / "README.md").read_text()
    for name in dir(hookspecs):
        if name.startswith("register_"):
            assert name in docs, f"hook {name} is not documented"


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_site_builds_strict(site):
    assert (site / "reference" / "components" / "index.html").is_file()
    assert "resnet34_unet" in (site / "reference" / "components" / "index.html").read_text()


def test_pages_render_in_a_headless_browser(site, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("SHIPTOOLKIT_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here (SHIPTOOLKIT_REQUIRE_BROWSER is set) but was not found.")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it and runs this test.")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    try:
        for page, expected in (("getting-started/", ["Getting started", "all-empty baseline"]),
                               ("reference/components/", ["resnet34_unet", "ship_fraction", "lovasz_hinge"])):
            dom = subprocess.run([chromium, *flags, "--dump-dom", f"{base}/{page}"], capture_output=True, text=True,
                                 timeout=120).stdout
            for text in expected:
                assert text in dom, f"{page} rendered without {text!r}"
        shot = tmp_path / "components.png"
        subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,900",
                        f"{base}/reference/components/"], capture_output=True, timeout=120)
        assert shot.is_file() and shot.stat().st_size > 10_000
    finally:
        server.shutdown()


def test_the_design_page_draws_the_module_map_from_the_folders():
    sys.path.insert(0, str(ROOT))
    from benchmarks.package_map import LAYER_ORDER, modules_markdown

    assert "<!-- generated:modules -->" in (ROOT / "docs" / "design.md").read_text()
    table = modules_markdown()
    package = ROOT / "shiptoolkit"
    for unit in LAYER_ORDER:
        assert f"**`{unit}/`**" in table or f"**`{unit}`**" in table
    for module in package.glob("*/*.py"):
        if module.name != "__init__.py":
            assert f"`{module.parent.name}.{module.stem}`" in table
    assert "The one implementation of the competition" not in table or "`scoring/`" in table


def test_the_plugin_page_lists_every_moved_import_path():
    from shiptoolkit.moved import MOVED

    assert "<!-- generated:moved -->" in (ROOT / "docs" / "plugins.md").read_text()
    table = reference.moved_markdown()
    for old, new in MOVED.items():
        assert f"| `shiptoolkit.{old}` | `shiptoolkit.{new[0]}`" in table
