"""The one error shape and the paging fields every list answer carries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    field: str
    message: str | None = None


class ErrorBody(BaseModel):
    """Every error answer, 500 included."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "invalid_request",
                    "message": "the request is not valid",
                    "request_id": "5f0c6d1e9a3b4c2d",
                    "details": [{"field": "limit", "message": "Input should be >= 1"}],
                }
            ]
        }
    )

    error: str = Field(description="a stable code: not_found, invalid_request, rate_limited, …")
    message: str
    request_id: str
    details: list[FieldError] | None = None


class Paging(BaseModel):
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
