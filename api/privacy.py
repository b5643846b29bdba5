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
    digits = [c for c in value if c.isdigit()]
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
        return [mask_value(field, v) for v in value]
    text = str(value)
    if "email" in field:
        return mask_email(text)
    if "phone" in field:
        return mask_phone(text)
    return mask_handle(text)


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy with every contact field masked."""
    return {k: (mask_value(k, v) if is_contact_field(k) else v) for k, v in record.items()}


def mask_member_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The member detail document as a viewer may see it."""
    out = dict(detail)
    out["member"] = mask_record(detail["member"])
    out["provenance"] = [
        {**p, "value": mask_value(str(p.get("attribute")), p.get("value"))}
        if is_contact_field(str(p.get("attribute")))
        else p
        for p in detail.get("provenance", [])
    ]
    out["identities"] = [
        {**i, "identity": mask_record(i["identity"])} for i in detail.get("identities", [])
    ]
    return out


def has_contact_values(record: dict[str, Any]) -> bool:
    return any(is_contact_field(k) and v for k, v in record.items())
