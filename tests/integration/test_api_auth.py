"""Authentication, the role policy, rate limiting, blocking and caching of the API,
against real Redis and Neo4j and a local imitation of Clerk's JWKS endpoint."""

from __future__ import annotations

import base64
import json
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Principal, roles_from_claims
from fakes.clerk import FakeClerk
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings

APP_ORIGIN = "http://localhost:5173"
ORG = "org_2community"


@pytest.fixture()
def clerk() -> Iterator[FakeClerk]:
    with FakeClerk() as c:
        yield c


def clerk_settings(settings: Settings, clerk: FakeClerk, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "auth_mode": "clerk",
            "clerk_jwks_url": clerk.jwks_url,
            "clerk_issuer": clerk.issuer,
            "clerk_authorized_parties": [APP_ORIGIN],
            "clerk_organization_ids": [ORG],
            **overrides,
        }
    )


def clerk_client(settings: Settings, clerk: FakeClerk, **overrides: object) -> TestClient:
    return TestClient(create_app(clerk_settings(settings, clerk, **overrides)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(clerk: FakeClerk, **extra: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "user_mallory",
        "iss": clerk.issuer,
        "azp": APP_ORIGIN,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 60,
        "role": "admin",
        **extra,
    }


# Each case: (name, token maker, expected status). Every one must be refused.
ATTACKS: list[tuple[str, Callable[[FakeClerk], str | None], int]] = [
    ("no token", lambda c: None, 401),
    ("malformed", lambda c: "not.a.jwt", 401),
    ("not a jwt at all", lambda c: "x" * 50, 401),
    (
        "alg none",
        lambda c: f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': c.kid})}.{_b64(_claims(c))}.",
        401,
    ),
    (
        "HS256 signed with the public key",
        lambda c: _hs256_with(c.public_pem, _claims(c), c.kid),
        401,
    ),
    (
        "foreign RSA key with the instance's kid",
        lambda c: c.session_token(
            claims={"role": "admin"},
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ),
        401,
    ),
    ("expired", lambda c: c.session_token(ttl=-60, claims={"role": "admin"}), 401),
    (
        "not yet valid",
        lambda c: c.session_token(claims={"role": "admin", "nbf": int(time.time()) + 600}),
        401,
    ),
    (
        "wrong issuer",
        lambda c: c.session_token(claims={"role": "admin", "iss": "https://evil.example"}),
        401,
    ),
    (
        "wrong azp",
        lambda c: c.session_token(azp="https://evil.example", claims={"role": "admin"}),
        401,
    ),
    ("no azp", lambda c: c.session_token(azp="", claims={"role": "admin"}), 401),
    ("unknown kid", lambda c: c.session_token(kid="ins_unknown", claims={"role": "admin"}), 401),
    ("no role at all", lambda c: c.session_token(), 403),
    ("role outside the policy", lambda c: c.session_token(claims={"role": "superuser"}), 403),
    (
        "metadata role (not the configured claim)",
        lambda c: c.session_token(claims={"metadata": {"role": "admin"}}),
        403,
    ),
    (
        "org admin of another organization",
        lambda c: c.session_token(claims={"org_id": "org_evil", "org_role": "org:admin"}),
        403,
    ),
    (
        "org admin without organization id",
        lambda c: c.session_token(claims={"org_role": "org:admin"}),
        403,
    ),
    (
        "org admin in compact claims of another organization",
        lambda c: c.session_token(claims={"o": {"id": "org_evil", "rol": "admin"}}),
        403,
    ),
]


def _hs256_with(secret: bytes, claims: dict[str, object], kid: str) -> str:
    """HS256 keyed with the RSA public key (PyJWT refuses PEM keys for HMAC; do it by hand)."""
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = _b64(claims)
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


@pytest.mark.parametrize(("case", "make", "expected"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_matrix_is_refused(
    services: Settings,
    figures: FigureStore,
    clerk: FakeClerk,
    case: str,
    make: Callable[[FakeClerk], str | None],
    expected: int,
) -> None:
    token = make(clerk)
    with clerk_client(services, clerk) as c:
        headers = bearer(token) if token is not None else {}
        # An admin-only route: escalation would show here first.
        resp = c.get("/v1/admin/contact-access", headers=headers)
        assert resp.status_code == expected, (case, resp.text)
        body = resp.json()
        assert set(body) >= {"error", "message", "request_id"}
        assert body["request_id"] == resp.headers["x-request-id"]
        if expected == 401:
            challenge = resp.headers["www-authenticate"]
            if token is None:
                assert challenge == 'Bearer realm="api"'
            else:
                assert 'error="invalid_token"' in challenge
            # No library or JWKS text reaches the caller.
            assert "jwks" not in body["message"].lower()
            assert "Error" not in body["message"]
        # A viewer-level route refuses the same token too.
        assert c.get("/v1/events", headers=headers).status_code == expected


def test_dev_token_with_wrong_secret_is_401(services: Settings, figures: FigureStore) -> None:
    forged = jwt.encode(
        {"sub": "x", "role": "admin", "exp": int(time.time()) + 60},
        "dev-only-secret-change-me-0123456789",  # the old published default
        "HS256",
    )
    with TestClient(create_app(dev_settings(services))) as c:
        resp = c.get("/v1/events", headers=bearer(forged))
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_policy_grants_roles_only_as_configured(
    graph: GraphStore, figures: FigureStore, clerk: FakeClerk, services: Settings
) -> None:
    with clerk_client(services, clerk) as c:
        verifier = c.app.state.platform.verifier  # type: ignore[attr-defined]

        def mapped(token: str) -> Principal:
            """The principal the app's own verifier makes of a token."""
            principal: Principal = c.portal.call(verifier.verify, token)  # type: ignore[union-attr]
            return principal

        member = clerk.session_token(claims={"org_id": ORG, "org_role": "org:member"})
        assert mapped(member) == Principal("user_2abc", frozenset({"viewer"}))
        events = c.get("/v1/events", headers=bearer(member))
        assert events.status_code == 200
        assert set(events.json()) == {"items", "total", "limit", "offset"}
        refused = c.get("/v1/merge-suggestions", headers=bearer(member))
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
        assert refused.json()["message"] == "requires the organizer role"
        admin = clerk.session_token(claims={"o": {"id": ORG, "rol": "admin"}})
        assert mapped(admin).roles == {"admin"} and mapped(admin).role == "admin"
        access = c.get("/v1/admin/contact-access", headers=bearer(admin))
        assert access.status_code == 200
        assert access.json() == {"items": [], "limit": 100, "offset": 0}
        organizer = clerk.session_token(claims={"role": "organizer"})
        assert mapped(organizer).roles == {"organizer"}
        queue = c.get("/v1/merge-suggestions", headers=bearer(organizer))
        assert queue.status_code == 200 and queue.json()["items"] == []
        blocked = c.get("/v1/admin/ip-blocks", headers=bearer(organizer))
        assert blocked.status_code == 403
        assert blocked.json()["message"] == "requires the admin role"
        # A token whose claims map to no role is refused, whatever else it holds.
        nothing = clerk.session_token(claims={"org_id": "org_evil", "org_role": "org:admin"})
        assert mapped(nothing).roles == frozenset()
        assert c.get("/v1/events", headers=bearer(nothing)).status_code == 403
    # A default role is a setting, off unless given.
    with clerk_client(services, clerk, auth_default_role="viewer") as c:
        assert c.get("/v1/events", headers=bearer(clerk.session_token())).status_code == 200


def test_roles_from_claims(services: Settings) -> None:
    cfg = services.model_copy(update={"clerk_organization_ids": [ORG]})
    assert roles_from_claims({"role": "organizer"}, cfg) == {"organizer"}
    assert roles_from_claims({"role": ["viewer", "organizer", "root"]}, cfg) == {
        "viewer",
        "organizer",
    }
    assert roles_from_claims({"org_id": ORG, "org_role": "org:admin"}, cfg) == {"admin"}
    assert roles_from_claims({"org_id": "org_x", "org_role": "org:admin"}, cfg) == set()
    assert roles_from_claims({"metadata": {"role": "admin"}}, cfg) == set()
    assert roles_from_claims({"role": "superuser"}, cfg) == set()
    nested = cfg.model_copy(update={"clerk_role_claim": "metadata.role"})
    assert roles_from_claims({"metadata": {"role": "admin"}, "role": "viewer"}, nested) == {"admin"}
    admin = Principal("u", frozenset({"admin"}))
    viewer = Principal("u", frozenset({"viewer"}))
    assert admin.has("organizer") and admin.has("viewer")
    assert viewer.has("viewer") and not viewer.has("organizer")


def test_clerk_mode_refuses_to_start_without_issuer_or_parties(
    services: Settings, clerk: FakeClerk
) -> None:
    for missing in ("clerk_issuer", "clerk_authorized_parties", "clerk_jwks_url"):
        cfg = clerk_settings(services, clerk, **{missing: [] if "parties" in missing else None})
        with pytest.raises(RuntimeError, match=missing.upper()):
            create_app(cfg)


def test_dev_mode_only_on_loopback_with_a_generated_secret(
    services: Settings, tmp_path: object
) -> None:
    with pytest.raises(RuntimeError, match="loopback"):
        create_app(dev_settings(services, api_host="0.0.0.0"))
    create_app(dev_settings(services, api_host="127.0.0.1"))
    assert type(services).model_fields["dev_jwt_secret"].default is None
    one = dev_settings(services, state_dir=Path(f"{tmp_path}/a"), dev_jwt_secret=None)
    two = dev_settings(services, state_dir=Path(f"{tmp_path}/b"), dev_jwt_secret=None)
    assert one.dev_secret() == one.dev_secret() != two.dev_secret()
    assert len(one.dev_secret()) >= 48
    secret_file = one.state_path / "secrets" / "dev-jwt-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_compose_runs_clerk_mode() -> None:
    from infra.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "AUTH_MODE: clerk" in text and "${AUTH_MODE" not in text


def test_unknown_kid_storm_costs_one_jwks_fetch(
    services: Settings, figures: FigureStore, clerk: FakeClerk
) -> None:
    cfg = {"rate_limit_anonymous_per_minute": 1000, "ip_block_threshold": 1000}
    with clerk_client(services, clerk, jwks_refetch_interval_seconds=60, **cfg) as c:
        ok = clerk.session_token(claims={"role": "viewer"})
        assert c.get("/v1/events", headers=bearer(ok)).status_code == 200
        fetched = clerk.jwks_requests
        assert fetched == 1
        for _ in range(50):
            forged = clerk.session_token(kid=f"ins_{uuid.uuid4().hex}", claims={"role": "admin"})
            resp = c.get("/v1/events", headers=bearer(forged))
            assert resp.status_code == 401
            assert resp.json()["message"] == "unknown signing key"
        # Within the refetch interval an unknown kid costs no request to the instance.
        assert clerk.jwks_requests == fetched
        assert c.get("/v1/events", headers=bearer(ok)).status_code == 200


def test_retired_signing_key_stops_working_after_cache_expiry(
    services: Settings, figures: FigureStore, clerk: FakeClerk
) -> None:
    with clerk_client(services, clerk, jwks_cache_seconds=1, jwks_refetch_interval_seconds=0) as c:
        old = clerk.session_token(claims={"role": "viewer"})
        assert c.get("/v1/events", headers=bearer(old)).status_code == 200
        old_kid = clerk.kid
        clerk.rotate(keep_old=False)
        time.sleep(1.2)
        stale = clerk.session_token(claims={"role": "viewer", "jti": "x"}, kid=old_kid)
        assert stale != old
        resp = c.get("/v1/events", headers=bearer(stale))
        assert resp.status_code == 401
        fresh = clerk.session_token(claims={"role": "viewer"})
        assert c.get("/v1/events", headers=bearer(fresh)).status_code == 200


def test_failed_auth_is_limited_before_verification(
    services: Settings, figures: FigureStore, clerk: FakeClerk
) -> None:
    with clerk_client(
        services, clerk, rate_limit_anonymous_per_minute=3, jwks_refetch_interval_seconds=0
    ) as c:
        for _ in range(3):
            bad = clerk.session_token(kid=f"ins_{uuid.uuid4().hex}")
            assert c.get("/v1/events", headers=bearer(bad)).status_code == 401
        fetched = clerk.jwks_requests
        bad = clerk.session_token(kid=f"ins_{uuid.uuid4().hex}")
        resp = c.get("/v1/events", headers=bearer(bad))
        assert resp.status_code == 429
        assert int(resp.headers["retry-after"]) >= 1
        assert clerk.jwks_requests == fetched  # refused before any key lookup


def test_rate_limit_is_a_sliding_budget_with_retry_after(
    services: Settings, figures: FigureStore
) -> None:
    cfg = dev_settings(services, rate_limit_per_minute=3)
    with TestClient(create_app(cfg)) as c:
        headers = auth_headers(cfg, user_id="user_busy")
        statuses = [c.get("/v1/events", headers=headers) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        assert statuses[0].headers["x-ratelimit-remaining"] == "2"
        limited = statuses[-1]
        assert 1 <= int(limited.headers["retry-after"]) <= 20  # one slot frees every 20 s
        assert limited.json()["error"] == "rate_limited"
        # Another user has a budget of their own.
        assert (
            c.get("/v1/events", headers=auth_headers(cfg, user_id="user_other")).status_code == 200
        )
    # No window boundary to exploit: the budget is spent however the requests straddle a
    # clock minute (GCRA keeps one arrival time per caller, not per-minute counters).
    key = figures.keys.rate_limit("user:user_busy")
    assert figures.r.exists(key) and figures.r.pttl(key) > 0


def test_repeat_offenders_are_blocked_and_admins_lift_blocks(
    services: Settings, figures: FigureStore
) -> None:
    cfg = dev_settings(
        services,
        ip_block_threshold=5,
        rate_limit_anonymous_per_minute=100,
        trusted_proxies=["127.0.0.1"],
    )
    app = create_app(cfg)
    with TestClient(app, client=("127.0.0.1", 40000)) as c:
        attacker = {"X-Forwarded-For": "203.0.113.7"}
        admin = {
            **auth_headers(cfg, role="admin", user_id="user_admin"),
            "X-Forwarded-For": "198.51.100.2",
        }
        for _ in range(5):
            resp = c.get("/v1/events", headers={**attacker, "Authorization": "Bearer junk"})
            assert resp.status_code == 401
        good = {**attacker, **auth_headers(cfg)}
        blocked = c.get("/v1/events", headers=good)
        assert blocked.status_code == 403 and blocked.json()["error"] == "blocked"
        listed = c.get("/v1/admin/ip-blocks", headers=admin).json()["items"]
        assert [b["ip"] for b in listed] == ["203.0.113.7"]
        assert 0 < listed[0]["expires_in_seconds"] <= cfg.ip_block_seconds
        lifted = c.delete("/v1/admin/ip-blocks/203.0.113.7", headers=admin)
        assert lifted.json() == {"ip": "203.0.113.7", "lifted": True}
        assert c.get("/v1/events", headers=good).status_code == 200
    # X-Forwarded-For from an address that is not a configured proxy is ignored.
    with TestClient(create_app(cfg), client=("192.0.2.50", 40000)) as c:
        for _ in range(5):
            c.get(
                "/v1/events",
                headers={"X-Forwarded-For": "198.51.100.99", "Authorization": "Bearer junk"},
            )
        assert figures.r.exists(figures.keys.ip_block("192.0.2.50"))
        assert not figures.r.exists(figures.keys.ip_block("198.51.100.99"))


def _add_events(graph: GraphStore, *ids: str) -> None:
    events = [
        {"id": i, "name": f"Meetup {i}", "at": f"2026-0{n + 1}-10T18:00:00Z"}
        for n, i in enumerate(ids)
    ]
    graph.run(
        "UNWIND $events AS e CREATE (:Event {event_id: e.id, source: 'luma', name: e.name, "
        "starts_at: datetime(e.at), timezone: 'Europe/Berlin', city: 'Berlin'})",
        events=events,
    )


def test_responses_are_cached_until_data_changes(
    services: Settings, figures: FigureStore, graph: GraphStore
) -> None:
    _add_events(graph, "luma:e1", "luma:e2")
    cfg = dev_settings(services)
    uncached = dev_settings(services, cache_ttl_seconds=0)
    with TestClient(create_app(cfg)) as c, TestClient(create_app(uncached)) as fresh:
        c.headers.update(auth_headers(cfg))
        fresh.headers.update(auth_headers(uncached))
        miss = c.get("/v1/events")
        assert miss.headers["x-cache"] == "miss"
        hit = c.get("/v1/events")
        assert hit.headers["x-cache"] == "hit"
        # The cached body is, byte for byte, the body computed afresh.
        assert hit.content == miss.content == fresh.get("/v1/events").content
        assert [i["event_id"] for i in hit.json()["items"]] == ["luma:e2", "luma:e1"]
        assert hit.json()["total"] == 2 and hit.json()["items"][0]["name"] == "Meetup luma:e2"
        assert c.get("/v1/events", params={"limit": 5}).headers["x-cache"] == "miss"
        # Unknown parameters are not part of the key: no new entries per junk parameter.
        before = len(figures.r.keys(figures.keys.response_cache("*", "*")))
        for i in range(20):
            junk = c.get("/v1/events", params={f"junk{i}": "x"})
            assert junk.headers["x-cache"] == "hit" and junk.content == miss.content
        assert len(figures.r.keys(figures.keys.response_cache("*", "*"))) == before
        # New data: the old body is served until the generation moves, then a fresh one.
        _add_events(graph, "luma:e0", "luma:e3", "luma:e9")
        stale = c.get("/v1/events")
        assert stale.headers["x-cache"] == "hit" and stale.content == miss.content
        figures.bump_generation()
        changed = c.get("/v1/events")
        assert changed.headers["x-cache"] == "miss"
        assert changed.content == fresh.get("/v1/events").content != miss.content
        assert changed.json()["total"] == 5
