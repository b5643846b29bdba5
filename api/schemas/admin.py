"""/v1/admin: address blocks, the contact-read access log, privacy export and erasure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from api.schemas.common import Paging


class IpBlock(BaseModel):
    ip: str
    expires_in_seconds: int


class IpBlocks(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"ip": "203.0.113.7", "expires_in_seconds": 840}], "total": 1}]
        }
    )

    items: list[IpBlock]
    total: int


class Lifted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ip": "203.0.113.7", "lifted": True}]}
    )

    ip: str
    lifted: bool


class AccessEntry(BaseModel):
    at: str
    by: str
    role: str | None = None
    route: str | None = None
    request_id: str | None = None
    member_ids: list[str]


class AccessLog(Paging):
    """Who read whose contact details, newest first (the values read are never logged)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "at": "2026-11-30T09:12:44.120000000Z",
                            "by": "user_2abc",
                            "role": "organizer",
                            "route": "member detail",
                            "request_id": "5f0c6d1e9a3b4c2d",
                            "member_ids": ["mem_01"],
                        }
                    ],
                    "limit": 100,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[AccessEntry]


class ErasureResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "mem_01",
                    "identities_erased": 3,
                    "raw_files_rewritten": 2,
                    "normalized_rows_removed": 3,
                    "tombstones": 4,
                    "cached_responses_removed": 12,
                }
            ]
        }
    )

    member_id: str
    identities_erased: int
    raw_files_rewritten: int
    normalized_rows_removed: int
    tombstones: int
    cached_responses_removed: int


class PersonExport(BaseModel):
    """A subject access export. The records are what the sources held, field for field,
    so their parts stay open objects."""

    model_config = ConfigDict(extra="allow")

    member_id: str
    exported_at: str
    member: dict[str, Any]
    provenance: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    raw_records: list[dict[str, Any]]
    quarantined_records: list[dict[str, Any]]
