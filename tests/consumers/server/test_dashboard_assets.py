"""The dashboard's ES modules: every one another imports is served, as JavaScript,
under the page's CSP, and each stays small (one view per module)."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from consumers.server.app import _ASSETS

from .conftest import StartServer

pytestmark = pytest.mark.integration

_IMPORT = re.compile(r'^import\s[^;]*?from\s+"\./([\w.-]+\.js)";', re.M | re.S)
_MAX_LINES = 300


def _imports(name: str) -> set[str]:
    return set(_IMPORT.findall((files("consumers.server") / name).read_text()))


def test_every_module_imported_is_an_asset_and_small() -> None:
    seen, todo = set(), ["dashboard.js"]
    while todo:
        name = todo.pop()
        seen.add(name)
        todo += sorted(_imports(name) - seen)
    scripts = {name for name in _ASSETS if name.endswith(".js")}
    assert seen == scripts, "every served module is used, every used module is served"
    assert {"dash-channels.js", "dash-subscriptions.js", "dash-chart.js"} <= seen
    for name in scripts:
        lines = (files("consumers.server") / name).read_text().count("\n")
        assert lines <= _MAX_LINES, f"{name} has {lines} lines: split it by view"


async def test_the_modules_are_served_as_javascript_under_the_csp(
    start_server: StartServer,
) -> None:
    app = await start_server()
    page = await app.client.get("/")
    assert '<script src="/static/dashboard.js" type="module">' in page.text
    for name in sorted(n for n in _ASSETS if n.endswith(".js")):
        asset = await app.client.get(f"/static/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith("text/javascript"), name
        assert "script-src 'self'" in asset.headers["content-security-policy"]
