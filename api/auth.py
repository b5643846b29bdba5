"""Authentication (Clerk session JWTs) and role checks.

Clerk signs session tokens with RS256; keys come from the instance's JWKS endpoint and
are cached by PyJWT's `PyJWKClient`. Roles come from a custom session claim (default
`role`) or from Clerk's organization role (`org_role`, e.g. `org:admin`). In `dev` auth
mode tokens are HS256 with a local secret, minted by `community dev-token`, so the
demo works without a Clerk instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
import redis
import structlog
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import AppState, app_state
from api.protection import check_rate_limit, client_ip
from infra.settings import Settings

ROLE_ORDER: dict[str, int] = {"viewer": 1, "organizer": 2, "admin": 3}
CLERK_ORG_ROLES: dict[str, str] = {
    "org:admin": "admin",
    "org:organizer": "organizer",
    "org:member": "viewer",
    "org:viewer": "viewer",
}

bearer = HTTPBearer(auto_error=False)
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        needed = ROLE_ORDER[role]
        return any(ROLE_ORDER.get(r, 0) >= needed for r in self.roles)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail={"error": "unauthorized", "message": message},
        headers={"WWW-Authenticate": "Bearer"},
    )


@lru_cache(maxsize=8)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def roles_from_claims(claims: dict[str, Any], role_claim: str) -> frozenset[str]:
    roles: set[str] = set()
    for source in (claims.get(role_claim), (claims.get("metadata") or {}).get("role")):
        if isinstance(source, str):
            roles.add(source)
        elif isinstance(source, list):
            roles.update(str(r) for r in source)
    org_role = claims.get("org_role") or (claims.get("o") or {}).get("rol")
    if isinstance(org_role, str):
        roles.add(CLERK_ORG_ROLES.get(org_role, CLERK_ORG_ROLES.get(f"org:{org_role}", "viewer")))
    known = {r for r in roles if r in ROLE_ORDER}
    return frozenset(known or {"viewer"})


def verify_token(token: str, settings: Settings) -> Principal:
    """Validates signature, expiry, issuer and authorized party; returns who is calling."""
    try:
        if settings.auth_mode == "dev":
            claims = jwt.decode(
                token,
                settings.dev_jwt_secret.get_secret_value(),
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
            )
        else:
            if not settings.clerk_jwks_url:
                raise _unauthorized("authentication is not configured (CLERK_JWKS_URL)")
            key = _jwks_client(settings.clerk_jwks_url).get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=settings.clerk_issuer,
                options={"require": ["exp", "sub"], "verify_iss": bool(settings.clerk_issuer)},
                leeway=5,
            )
            azp = claims.get("azp")
            if settings.clerk_authorized_parties and azp not in settings.clerk_authorized_parties:
                raise _unauthorized(f"token issued for an unexpected party: {azp!r}")
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.PyJWKClientError as exc:
        raise _unauthorized(f"signing key not found: {exc}") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc
    return Principal(str(claims["sub"]), roles_from_claims(claims, settings.clerk_role_claim))


def mint_dev_token(settings: Settings, user_id: str, role: str, ttl_seconds: int = 3600) -> str:
    """A dev-mode token, for the demo and for scripts against a local API."""
    now = int(time.time())
    payload = {
        "sub": user_id,
        settings.clerk_role_claim: role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(payload, settings.dev_jwt_secret.get_secret_value(), algorithm="HS256")


def _limit(state: AppState, subject: str, limit: int, response: Response | None) -> None:
    try:
        check_rate_limit(state.figures, subject, limit, response)
    except redis.RedisError:
        log.warning("rate limiting skipped: Redis unavailable")


async def current_principal(
    request: Request,
    response: Response,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    state: AppState = Depends(app_state),
) -> Principal:
    """The verified caller; failed attempts are rate limited per client address."""
    try:
        if credentials is None:
            raise _unauthorized("missing bearer token")
        principal = verify_token(credentials.credentials, state.settings)
    except HTTPException:
        _limit(
            state,
            f"anon:{client_ip(request)}",
            state.settings.rate_limit_anonymous_per_minute,
            None,
        )
        raise
    _limit(state, f"user:{principal.user_id}", state.settings.rate_limit_per_minute, response)
    request.state.principal = principal
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
