"""Personal data by role: masking of contact details for callers who may not see them.

Viewers see names, attendance and metrics; emails, phones and handles are masked so a
list stays readable (`b***@gmail.com`, `+1 ••• ••• 1234`) without disclosing anything
that reaches a person. Organizers see contact details; each such read is access-logged
by the routes (who read whose details, when — never the values).
"""

from __future__ import annotations

from typing import Any

CONTACT_FIELDS: frozenset[str] = frozenset(
    {"email", "emails", "phone", "phones", "handle", "handles"}
)


def is_contact_field(name: str) -> bool:
    return name in CONTACT_FIELDS or name.startswith("handle_")


def mask_email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str) -> str:
    digits = [char for char in value if char.isdigit()]
    if len(digits) < 4:
        return "•••"
    country = ""
    if value.startswith("+"):
        # E.164: the country code is 1-3 digits; show at most the first one or two.
        country = "+" + "".join(digits[: 1 if digits[0] in "17" else 2]) + " "
    return f"{country}••• ••• {''.join(digits[-4:])}"


def mask_handle(value: str) -> str:
    text = value.lstrip("@")
    return f"{text[:1]}***" if text else "***"


def mask_value(field: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [mask_value(field, item) for item in value]
    text = str(value)
    if "email" in field:
        return mask_email(text)
    if "phone" in field:
        return mask_phone(text)
    return mask_handle(text)


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy with every contact field masked."""
    return {
        name: (mask_value(name, value) if is_contact_field(name) else value)
        for name, value in record.items()
    }


def mask_member_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The member detail document as a viewer may see it."""
    out = dict(detail)
    out["member"] = mask_record(detail["member"])
    out["provenance"] = [
        {**source, "value": mask_value(str(source.get("attribute")), source.get("value"))}
        if is_contact_field(str(source.get("attribute")))
        else source
        for source in detail.get("provenance", [])
    ]
    out["identities"] = [
        {**identity, "identity": mask_record(identity["identity"])}
        for identity in detail.get("identities", [])
    ]
    return out
