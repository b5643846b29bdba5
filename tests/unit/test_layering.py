"""What `lint-imports` cannot see: the modules a fresh interpreter really loads (third-party
packages' own imports included) and that no settings are read at import time. The API never
loads Dagster; domain code loads no framework or database driver. Checked in a fresh
interpreter so other tests' imports don't mask it."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, sys
for name in {modules!r}:
    importlib.import_module(name)
print(sorted({{m.split('.')[0] for m in sys.modules}} & {forbidden!r}))
"""


def loaded_forbidden(modules: list[str], forbidden: set[str]) -> str:
    code = PROBE.format(modules=modules, forbidden=forbidden)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_api_does_not_import_dagster() -> None:
    assert loaded_forbidden(["api.app"], {"dagster"}) == "[]"


def test_domain_is_pure() -> None:
    modules = [
        "domain.model",
        "domain.normalize.luma",
        "domain.normalize.eventbrite",
        "domain.normalize.partiful",
        "domain.identity.pipeline",
        "domain.network.metrics",
        "domain.topology.report",
    ]
    forbidden = {"dagster", "fastapi", "neo4j", "redis", "httpx", "starlette"}
    assert loaded_forbidden(modules, forbidden) == "[]"


def test_no_settings_read_at_import() -> None:
    # A broken environment must not break imports: settings are read when used.
    code = "import os; os.environ['NEO4J_WRITE_BATCH_SIZE']='not-a-number'; import orchestration.definitions, api.app, cli.main; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_services_load_neither_dagster_nor_fastapi() -> None:
    # The use-case layer is called by the API, the assets and the CLI alike.
    modules = [
        "services.corrections",
        "services.identity",
        "services.imports",
        "services.syncs",
        "services.analytics",
        "services.members",
    ]
    assert loaded_forbidden(modules, {"dagster", "fastapi", "starlette"}) == "[]"
