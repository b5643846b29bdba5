"""The typed contract of the API as `create_app` builds it: every route declares its
response model, OpenAPI documents a body for each, and the published examples are valid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from api.app import create_app
from api.schemas import admin, analytics, common, events, ops
from infra import documents
from infra.settings import Settings
from tests.auth_helpers import dev_settings

FRAMEWORK_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, looking inside included routers (FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)
        else:
            assert getattr(route, "path", None) in FRAMEWORK_PATHS, route


def test_every_route_has_a_response_model(settings: Settings) -> None:
    app = create_app(dev_settings(settings))
    routes = list(api_routes(app.routes))
    missing = [f"{sorted(r.methods)} {r.path}" for r in routes if r.response_model is None]
    assert missing == []
    # The walk saw every operation OpenAPI publishes, and each documents its success body.
    spec = app.openapi()
    operations = {(m.upper(), p) for p, ops_ in spec["paths"].items() for m in ops_}
    assert operations == {(m, r.path) for r in routes for m in r.methods}
    assert len(operations) >= 26
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            success = operation["responses"].get("200") or operation["responses"].get("201")
            assert success is not None, (method, path)
            (content,) = success["content"].values()
            assert content["schema"], (method, path)


def _models() -> Iterator[type[BaseModel]]:
    for module in (admin, analytics, common, events, ops, documents):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                yield value


def test_published_examples_are_valid(settings: Settings) -> None:
    with_examples = []
    for model in set(_models()):
        extra: Any = model.model_config.get("json_schema_extra")
        if not isinstance(extra, dict) or "examples" not in extra:
            continue
        for sample in extra["examples"]:
            model.model_validate(sample)
        with_examples.append(model.__name__)
    # The main schemas carry examples, and OpenAPI publishes them.
    main = {"Health", "EventPage", "CommunitySummary", "Snapshot", "Layout", "ErrorBody"}
    assert main <= set(with_examples)
    schemas = create_app(dev_settings(settings)).openapi()["components"]["schemas"]
    for name in main:
        assert schemas[name]["examples"], name
