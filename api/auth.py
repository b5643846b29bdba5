"""Authentication (Clerk session JWTs) and the role policy.

Clerk signs session tokens with RS256. Keys come from the instance's JWKS endpoint,
fetched asynchronously with a timeout, expiring from the cache after
`JWKS_CACHE_SECONDS`, and refetched for an unknown `kid` at most once per
`JWKS_REFETCH_INTERVAL_SECONDS` — so a storm of tokens with random key ids costs no
network traffic and never waits inside the event loop.

Roles come from one explicit policy: the configured claim's values map to platform
roles (`AUTH_ROLE_POLICY`); an organization role counts only inside the configured
organizations. A token granted no role is refused (403) unless a default role is set.

In `dev` auth mode tokens are HS256 with a secret generated per install; the API refuses
to start in that mode unless bound to loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import RSAAlgorithm

from infra.settings import Settings

ROLE_ORDER: dict[str, int] = {"viewer": 1, "organizer": 2, "admin": 3}
MAX_TOKEN_LENGTH = 8192
MAX_KID_LENGTH = 128

bearer = HTTPBearer(auto_error=False, description="A Clerk session token (JWT).")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        needed = ROLE_ORDER[role]
        return any(ROLE_ORDER.get(held, 0) >= needed for held in self.roles)

    @property
    def role(self) -> str:
        return max(self.roles, key=lambda r: ROLE_ORDER.get(r, 0))


class AuthError(Exception):
    """A refused request: 401 (who are you) or 403 (not allowed)."""

    def __init__(self, status_code: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message

    def headers(self) -> dict[str, str]:
        if self.status_code != 401:
            return {}
        if self.message == "missing bearer token":
            return {"WWW-Authenticate": 'Bearer realm="api"'}
        return {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'}


def _invalid(message: str = "invalid token") -> AuthError:
    return AuthError(401, "unauthorized", message)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_settings(settings: Settings) -> None:
    """Refuses to start with an authentication setup that would let strangers in."""
    policy_roles = set(settings.auth_role_policy.values()) | set(
        settings.clerk_org_role_policy.values()
    )
    unknown = policy_roles - set(ROLE_ORDER)
    if unknown:
        raise RuntimeError(f"role policy names unknown roles: {sorted(unknown)}")
    if settings.auth_mode == "dev":
        if not is_loopback(settings.api_host):
            raise RuntimeError(
                "AUTH_MODE=dev is only allowed with the API bound to loopback "
                f"(API_HOST is {settings.api_host!r}); use AUTH_MODE=clerk"
            )
        return
    missing = [
        name
        for name, value in (
            ("CLERK_JWKS_URL", settings.clerk_jwks_url),
            ("CLERK_ISSUER", settings.clerk_issuer),
            ("CLERK_AUTHORIZED_PARTIES", settings.clerk_authorized_parties),
        )
        if not value
    ]
    if missing:
        raise RuntimeError(
            f"AUTH_MODE=clerk needs {', '.join(missing)}: without them any token signed by "
            "the instance, for any application, would be accepted"
        )


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def roles_from_claims(claims: dict[str, Any], settings: Settings) -> frozenset[str]:
    """Platform roles the policy grants this token (empty: none)."""
    roles: set[str] = set()
    value = _claim(claims, settings.clerk_role_claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    for claimed in values:
        granted = settings.auth_role_policy.get(str(claimed))
        if granted:
            roles.add(granted)
    compact = claims.get("o")
    org: dict[str, Any] = compact if isinstance(compact, dict) else {}
    org_id = claims.get("org_id") or org.get("id")
    org_role = claims.get("org_role") or org.get("rol")
    in_org = isinstance(org_id, str) and org_id in settings.clerk_organization_ids
    if in_org and isinstance(org_role, str):
        policy = settings.clerk_org_role_policy
        granted = policy.get(org_role) or policy.get(f"org:{org_role}")
        if granted:
            roles.add(granted)
    if not roles and settings.auth_default_role:
        roles.add(settings.auth_default_role)
    return frozenset(role for role in roles if role in ROLE_ORDER)


class JwksCache:
    """Signing keys by `kid`, fetched without blocking and expiring after a while."""

    def __init__(self, url: str, timeout: float, ttl: float, refetch_interval: float) -> None:
        self.url = url
        self.timeout = timeout
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.keys: dict[str, Any] = {}
        self.fetched_at = -math.inf
        self.attempted_at = -math.inf
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def key(self, kid: str) -> Any | None:
        now = time.monotonic()
        if now - self.fetched_at < self.ttl and kid in self.keys:
            return self.keys[kid]
        if now - self.attempted_at < self.refetch_interval:
            return None
        async with self._lock:
            if time.monotonic() - self.attempted_at >= self.refetch_interval:
                await self._fetch()
        if time.monotonic() - self.fetched_at < self.ttl:
            return self.keys.get(kid)
        return None

    async def _fetch(self) -> None:
        self.attempted_at = time.monotonic()
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            resp = await self._client.get(self.url)
            resp.raise_for_status()
            data = resp.json()
            keys = {}
            for jwk in data.get("keys", []):
                if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                    continue
                if jwk.get("alg", "RS256") != "RS256" or not isinstance(jwk.get("kid"), str):
                    continue
                keys[jwk["kid"]] = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:
            log.warning("jwks fetch failed", error=type(exc).__name__)
            return
        self.keys = keys  # keys the instance retired are gone from here on
        self.fetched_at = time.monotonic()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class Verifier:
    """Turns a bearer token into a Principal, or raises AuthError."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jwks = (
            JwksCache(
                settings.clerk_jwks_url,
                settings.jwks_timeout_seconds,
                settings.jwks_cache_seconds,
                settings.jwks_refetch_interval_seconds,
            )
            if settings.auth_mode == "clerk" and settings.clerk_jwks_url
            else None
        )
        self.dev_secret = settings.dev_secret() if settings.auth_mode == "dev" else None
        # Verified tokens, until their expiry (at most a minute): a cached read should not
        # pay an RSA verification per request.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._verified_max = 10000

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid()
        hit = self._verified.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        claims = await self._claims(token)
        roles = roles_from_claims(claims, self.settings)
        principal = Principal(str(claims["sub"]), roles)
        expires = min(float(claims["exp"]), time.time() + 60)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self._verified_max:
            self._verified.popitem(last=False)
        return principal

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _invalid() from exc
        try:
            if self.dev_secret is not None:
                if header.get("alg") != "HS256":
                    raise _invalid()
                return jwt.decode(
                    token,
                    self.dev_secret,
                    algorithms=["HS256"],
                    options={"require": ["exp", "sub"]},
                )
            return await self._clerk_claims(token, header)
        except jwt.ExpiredSignatureError as exc:
            raise _invalid("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _invalid("token not yet valid") from exc
        except jwt.InvalidTokenError as exc:
            raise _invalid() from exc

    async def _clerk_claims(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        cfg = self.settings
        if self.jwks is None or not cfg.clerk_issuer or not cfg.clerk_authorized_parties:
            raise AuthError(503, "unavailable", "authentication is not configured")
        if header.get("alg") != "RS256":
            raise _invalid()
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise _invalid()
        key = await self.jwks.key(kid)
        if key is None:
            raise _invalid("unknown signing key")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=cfg.clerk_issuer,
            options={"require": ["exp", "iat", "sub", "iss"], "verify_aud": False},
            leeway=5,
        )
        if claims.get("azp") not in cfg.clerk_authorized_parties:
            raise _invalid("token issued for another application")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _invalid()
        return claims

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()


def mint_dev_token(settings: Settings, user_id: str, role: str, ttl_seconds: int = 3600) -> str:
    """A dev-mode token, for the demo and for scripts against a local API."""
    now = int(time.time())
    payload = {
        "sub": user_id,
        settings.clerk_role_claim: role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(payload, settings.dev_secret(), algorithm="HS256")


async def current_principal(
    request: Request,
    _: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    """The caller, verified by the edge middleware before any body was read."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route outside /v1 asked for a caller
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail={"error": "unauthorized", "message": "missing bearer token"},
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    return principal


def require_role(role: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits callers holding `role` or a higher one."""
    if role not in ROLE_ORDER:
        raise ValueError(f"unknown role {role!r}")

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail={"error": "forbidden", "message": f"requires the {role} role"},
            )
        return principal

    return dependency
