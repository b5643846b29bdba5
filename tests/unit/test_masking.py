"""Masking of contact details for viewers."""

from __future__ import annotations

from api.privacy import mask_email, mask_member_detail, mask_phone, mask_record


def test_emails_and_phones_are_masked_readably() -> None:
    assert mask_email("bob@gmail.com") == "b***@gmail.com"
    assert mask_email("not-an-email") == "***"
    assert mask_phone("+14155551234") == "+1 ••• ••• 1234"
    assert mask_phone("+447700900123") == "+44 ••• ••• 0123"
    assert mask_phone("12") == "•••"


def test_records_and_details_mask_every_contact_field() -> None:
    rec = {
        "display_name": "Bob Smith",
        "email": "bob@gmail.com",
        "emails": ["bob@gmail.com", "bob@work.io"],
        "phone": "+14155551234",
        "handle_instagram": "@bobby",
    }
    masked = mask_record(rec)
    assert masked == {
        "display_name": "Bob Smith",
        "email": "b***@gmail.com",
        "emails": ["b***@gmail.com", "b***@work.io"],
        "phone": "+1 ••• ••• 1234",
        "handle_instagram": "b***",
    }
    detail = mask_member_detail(
        {
            "member": rec,
            "provenance": [
                {"attribute": "email", "value": "bob@gmail.com"},
                {"attribute": "display_name", "value": "Bob Smith"},
            ],
            "identities": [{"identity": {"email": "bob@gmail.com"}, "attendance": []}],
        }
    )
    assert "bob@" not in str(detail)
    assert detail["provenance"][1]["value"] == "Bob Smith"


def test_asset_previews_never_show_contact_details() -> None:
    import polars as pl

    from assets.metadata import md_table

    frame = pl.DataFrame(
        {
            "member_id": ["m1"],
            "display_name": ["Bob Smith"],
            "email": ["bob@gmail.com"],
            "phone": ["+14155551234"],
            "handle_instagram": ["bobby"],
        }
    )
    text = str(md_table(frame).value)
    assert "Bob Smith" in text
    assert "bob@" not in text and "4155551234" not in text and "bobby" not in text


def test_tombstones_drop_erased_people_from_any_batch() -> None:
    import polars as pl

    from infra.erasure import Tombstones, identifier_keys

    stones = Tombstones(b"k" * 32)
    stones.add(identifier_keys({"email": "Bob@Gmail.com", "phone": "+1 212 555 0101"}))
    obs = pl.DataFrame(
        {
            "observation_id": ["luma:1", "luma:2", "partiful:3", "luma:4"],
            "source": ["luma", "luma", "partiful", "luma"],
            "email": ["bob@gmail.com", "amy@x.org", None, None],
            "phone": [None, None, "+12125550101", None],
        }
    )
    att = pl.DataFrame(
        {
            "observation_id": ["luma:1", "luma:2", "partiful:3", "luma:4"],
            "plus_one_of": [None, None, None, "luma:1"],
        }
    )
    out = stones.drop_erased({"observations": obs, "attendance": att})
    assert out["observations"]["observation_id"].to_list() == ["luma:2", "luma:4"]
    assert out["attendance"]["plus_one_of"].to_list() == [None, None]
    assert "bob" not in str(sorted(stones.hashes))
