"""Bearer headers for API tests, minted the same way `community dev-token` does."""

from __future__ import annotations

from infra.settings import Settings


def dev_settings(settings: Settings, **overrides: object) -> Settings:
    """The given settings in dev auth mode (HS256 tokens signed with a local secret)."""
    return settings.model_copy(update={"auth_mode": "dev", **overrides})


def auth_headers(
    settings: Settings, role: str = "viewer", user_id: str = "user_test"
) -> dict[str, str]:
    from api.auth import mint_dev_token

    return {"Authorization": f"Bearer {mint_dev_token(settings, user_id, role)}"}
