"""Settings per area: typed views over the flat environment variables, each converting to
its domain's config, and the platform resource built directly from its area."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from domain.identity.pipeline import Thresholds
from domain.network.coattendance import WeightConfig
from domain.network.metrics import MetricsConfig
from domain.topology.report import TdaConfig
from infra.settings import AREAS, Settings, get_settings
from resources.stores import PlatformsResource


def test_every_setting_belongs_to_exactly_one_area() -> None:
    owners: dict[str, list[str]] = {}
    for area, model in AREAS.items():
        for name in model.flat_names():
            owners.setdefault(name, []).append(area)
    assert set(owners) == set(Settings.model_fields)
    assert {n: a for n, a in owners.items() if len(a) > 1} == {}


def test_each_area_is_a_property_of_settings() -> None:
    settings = get_settings()
    for area, model in AREAS.items():
        assert isinstance(getattr(settings, area), model)


def test_flat_environment_variables_reach_the_areas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "bolt://db.internal:7999")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "t1")
    monkeypatch.setenv("CACHE_TTL_SECONDS", "42")
    monkeypatch.setenv("IDENTITY_MERGE_THRESHOLD", "0.97")
    monkeypatch.setenv("SCHEDULE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("TDA_MEMORY_LIMIT_MB", "128")
    settings = get_settings()
    assert settings.neo4j_uri == settings.neo4j.uri == "bolt://db.internal:7999"
    assert settings.redis.key_prefix == "t1" and settings.redis.cache_ttl_seconds == 42
    assert settings.identity.merge_threshold == settings.identity_merge_threshold == 0.97
    assert settings.schedules.timezone == "Europe/Berlin"
    assert settings.tda.to_config().memory_bytes == 128 * 2**20


def test_bad_values_are_refused_by_the_flat_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_MERGE_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="identity_merge_threshold"):
        get_settings()


def test_areas_follow_a_copy_with_changes() -> None:
    settings = get_settings().model_copy(
        update={"analytics_seed": 11, "luma_base_url": "http://127.0.0.1:1/v1"}
    )
    assert settings.analytics.seed == 11
    assert settings.analytics.metrics_config().seed == 11
    assert settings.platforms.luma_base_url == "http://127.0.0.1:1/v1"


def test_conversions_to_the_domain_configs() -> None:
    s = get_settings(
        identity_merge_threshold=0.96,
        identity_suggest_threshold=0.8,
        identity_merge_without_identifier_threshold=0.98,
        identity_common_name_min=4,
        analytics_checkin_weight=2.0,
        analytics_rsvp_weight=0.25,
        analytics_monthly_decay=0.2,
        analytics_engine="networkx",
        analytics_betweenness_samples=50,
        tda_engine="ripser",
        tda_computation_timeout=9.0,
        tda_memory_limit_mb=256,
    )
    assert s.identity.to_config() == Thresholds(
        merge_at=0.96, suggest_at=0.8, merge_without_identifier_at=0.98, common_name_min=4
    )
    assert s.analytics.weight_config() == WeightConfig(2.0, 0.25, 0.2)
    metrics = s.analytics.metrics_config()
    assert isinstance(metrics, MetricsConfig)
    assert (metrics.engine, metrics.betweenness_samples) == ("networkx", 50)
    tda = s.tda.to_config()
    assert isinstance(tda, TdaConfig)
    assert (tda.engine, tda.timeout_s, tda.memory_bytes) == ("ripser", 9.0, 256 * 2**20)


def test_platform_resource_carries_its_area_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LUMA_API_KEY", "key-from-the-environment")
    built = get_settings().model_copy(
        update={
            "luma_base_url": "http://127.0.0.1:9/v1",
            "sync_page_size": 10,
            "luma_api_key": SecretStr("never-in-config"),
        }
    )
    resource = PlatformsResource.from_settings(built)
    assert resource.values is not None
    assert "luma_api_key" not in resource.values and "eventbrite_token" not in resource.values
    assert "never-in-config" not in repr(resource.values)
    at_run = resource.settings()
    assert at_run.platforms.luma_base_url == "http://127.0.0.1:9/v1"
    assert at_run.sync_page_size == 10
    assert at_run.luma_api_key.get_secret_value() == "key-from-the-environment"


def test_a_blank_secret_is_unset_not_an_empty_token() -> None:
    assert Settings(metrics_token="", dev_jwt_secret="  ").metrics_token is None
    assert Settings(dev_jwt_secret="  ").dev_jwt_secret is None
    token = Settings(metrics_token="s3cret").metrics_token
    assert token is not None and token.get_secret_value() == "s3cret"
