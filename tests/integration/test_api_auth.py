"""Authentication, roles, rate limiting and caching of the API, against real Redis and Neo4j."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Principal, roles_from_claims
from fakes.clerk import FakeClerk
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings


@pytest.fixture()
def clerk() -> Iterator[FakeClerk]:
    with FakeClerk() as c:
        yield c


def clerk_client(settings: Settings, clerk: FakeClerk, **overrides: object) -> TestClient:
    cfg = settings.model_copy(
        update={
            "auth_mode": "clerk",
            "clerk_jwks_url": clerk.jwks_url,
            "clerk_issuer": clerk.issuer,
            **overrides,
        }
    )
    return TestClient(create_app(cfg))


def test_missing_token_is_401_with_message(services: Settings, figures: FigureStore) -> None:
    with TestClient(create_app(dev_settings(services))) as c:
        resp = c.get("/v1/events")
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized", "message": "missing bearer token"}
    assert resp.headers["www-authenticate"] == "Bearer"


def test_clerk_session_token_is_accepted(
    services: Settings, figures: FigureStore, clerk: FakeClerk
) -> None:
    with clerk_client(services, clerk) as c:
        token = clerk.session_token(claims={"org_role": "org:member"})
        resp = c.get("/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        # The JWKS is fetched once and cached for later requests.
        c.get("/v1/events", headers={"Authorization": f"Bearer {clerk.session_token()}"})
    assert clerk.jwks_requests == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("expired", "token expired"),
        ("foreign_key", "invalid token"),
        ("wrong_issuer", "invalid token"),
        ("wrong_party", "unexpected party"),
        ("garbage", "invalid token"),
    ],
)
def test_bad_clerk_tokens_are_401(
    services: Settings, figures: FigureStore, clerk: FakeClerk, case: str, message: str
) -> None:
    tokens = {
        "expired": lambda: clerk.session_token(ttl=-60),
        "foreign_key": lambda: clerk.session_token(
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "wrong_issuer": lambda: clerk.session_token(claims={"iss": "https://evil.example"}),
        "wrong_party": lambda: clerk.session_token(azp="https://evil.example"),
        "garbage": lambda: "not.a.jwt",
    }
    with clerk_client(services, clerk, clerk_authorized_parties=["http://localhost:5173"]) as c:
        resp = c.get("/v1/events", headers={"Authorization": f"Bearer {tokens[case]()}"})
    assert resp.status_code == 401
    assert message in resp.json()["message"]


def test_dev_token_with_wrong_secret_is_401(services: Settings, figures: FigureStore) -> None:
    forged = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60}, "another-secret-0123456789abcdefghijkl", "HS256"
    )
    with TestClient(create_app(dev_settings(services))) as c:
        resp = c.get("/v1/events", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401


def test_roles_from_claims() -> None:
    assert roles_from_claims({"role": "organizer"}, "role") == {"organizer"}
    assert roles_from_claims({"org_role": "org:admin"}, "role") == {"admin"}
    assert roles_from_claims({"metadata": {"role": "admin"}}, "role") == {"admin"}
    assert roles_from_claims({"role": "superuser"}, "role") == {"viewer"}
    admin = Principal("u", frozenset({"admin"}))
    viewer = Principal("u", frozenset({"viewer"}))
    assert admin.has("organizer") and admin.has("viewer")
    assert viewer.has("viewer") and not viewer.has("organizer")


def test_rate_limit_answers_429_with_retry_after(services: Settings, figures: FigureStore) -> None:
    cfg = dev_settings(services, rate_limit_per_minute=3)
    # The window is one clock minute: start well inside one so all four requests share it.
    while time.time() % 60 > 55:
        time.sleep(0.5)
    with TestClient(create_app(cfg)) as c:
        headers = auth_headers(cfg, user_id="user_busy")
        statuses = [c.get("/v1/events", headers=headers) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        assert statuses[0].headers["x-ratelimit-remaining"] == "2"
        limited = statuses[-1]
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"] == "rate_limited"
        # Another user has a budget of their own.
        assert (
            c.get("/v1/events", headers=auth_headers(cfg, user_id="user_other")).status_code == 200
        )


def test_responses_are_cached_until_data_changes(services: Settings, figures: FigureStore) -> None:
    cfg = dev_settings(services)
    with TestClient(create_app(cfg)) as c:
        c.headers.update(auth_headers(cfg))
        assert c.get("/v1/events").headers["x-cache"] == "miss"
        assert c.get("/v1/events").headers["x-cache"] == "hit"
        assert c.get("/v1/events", params={"limit": 5}).headers["x-cache"] == "miss"
        figures.bump_generation()
        assert c.get("/v1/events").headers["x-cache"] == "miss"
