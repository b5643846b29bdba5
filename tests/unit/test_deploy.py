"""The deployment files, checked without a Docker engine: the compose file against the
Compose specification's JSON schema, and what an operator relies on in both files."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import yaml

from infra.settings import PROJECT_ROOT

SCHEMA = PROJECT_ROOT / "deploy" / "compose-spec.schema.json"


def _validator() -> Any:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))


def test_compose_file_follows_the_specification() -> None:
    doc = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    validator = _validator()
    assert [str(e) for e in validator.iter_errors(doc)] == []
    # The schema does catch mistakes.
    broken = {"services": {"api": {"image": "x", "healthcheck": {"intervall": "5s"}}}}
    assert list(validator.iter_errors(broken))

    services = doc["services"]
    assert {"neo4j", "redis", "postgres", "api", "dagster-webserver", "dagster-daemon"} <= set(
        services
    )
    for name, svc in services.items():
        if name != "migrate":  # a one-shot job
            assert "healthcheck" in svc, name
            assert svc["deploy"]["resources"]["limits"]["memory"], name
    assert "--appendonly" in services["redis"]["command"]  # Redis persistence on
    for name in ("neo4j", "redis", "postgres"):
        assert services[name]["volumes"], name
    for name in ("api", "dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_image_is_multi_stage_non_root_with_health_check() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    froms = [ln for ln in text.splitlines() if ln.startswith("FROM ")]
    assert len(froms) == 2 and " AS build" in froms[0] and " AS runtime" in froms[1]
    runtime = text.split(froms[1], 1)[1]
    assert "COPY --from=build /opt/venv" in runtime
    user = [ln for ln in runtime.splitlines() if ln.startswith("USER ")]
    assert user and user[-1].split()[1] not in ("root", "0")
    assert "HEALTHCHECK" in runtime and "/health" in runtime
    assert "deploy/dagster.yaml" in runtime


def test_image_and_run_script_tune_the_allocator_alike() -> None:
    """Both start processes with the same jemalloc settings for polars (see `./run`)."""
    run = (PROJECT_ROOT / "run").read_text()
    image = (PROJECT_ROOT / "Dockerfile").read_text()
    from_run = re.search(r'_RJEM_MALLOC_CONF=\"\$\{_RJEM_MALLOC_CONF:-([^}]+)\}"', run)
    from_image = re.search(r"_RJEM_MALLOC_CONF=(\S+)", image)
    assert from_run and from_image
    assert from_run.group(1) == from_image.group(1)
    assert "dirty_decay_ms:10000" in from_run.group(1)


def test_compose_services_share_state_and_verify_backups() -> None:
    doc = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = doc["services"]

    def mounts(name: str) -> dict[str, str]:
        pairs = (v.split(":")[:2] for v in services[name].get("volumes", []))
        return {target: source for source, target in pairs}

    # Erasure (API) and imports (Dagster runs) see one landing, store and privacy key.
    for name in ("api", "dagster-webserver", "dagster-daemon"):
        assert mounts(name)["/data"] == "platform-data", name
        assert mounts(name)["/state"] == "platform-state", name
    for name in ("dagster-webserver", "dagster-daemon"):
        assert mounts(name)["/state/dagster/dagster.yaml"] == "./deploy/dagster.yaml", name
        assert services[name]["init"] is True
    # The image has no Java: backups are verified against a Neo4j service.
    verify = doc["x-platform-env"]["BACKUP_VERIFY_NEO4J_URI"]
    host = verify.split("//", 1)[1].split(":", 1)[0]
    assert "neo4j" in services[host]["image"] and "volumes" not in services[host]
    assert services["dagster-daemon"]["depends_on"][host]["condition"] == "service_healthy"
    # An empty METRICS_TOKEN is a bearer every caller matches: the file requires one.
    assert ":?" in doc["x-platform-env"]["METRICS_TOKEN"]
