import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.normalize.partiful import (
    event_meta_from_stem,
    name_hash,
    normalize_partiful_csv,
    normalized_name,
    normalized_names,
    number_distinct,
    occurrences,
    partiful_event,
)
from ingest.exports import normalize_file, read_csv_text

EVENT = {
    "id": "pfParty",
    "title": "Rooftop",
    "start": "2026-10-24T19:00:00",
    "timezone": "America/New_York",
    "url": "https://partiful.com/e/pfParty",
    "city": "New York",
}

NEW = (
    "Name,Status,RSVP date,Invited By,Is Plus One Of,What's your Instagram?,Where do you work?\n"
    "Priya Raman,Going,2026-10-02 09:14:22,Alice Chen,,@priya.codes,Raman Dev\n"
    "rob smith,Going,2026-10-02 09:15:01,Alice Chen,PRIYA  raman,,\n"
    "Alice Chen,Host,2026-10-01 12:00:00,,,,\n"
    "Jordan Lee,Maybe,,,,,\n"
    "Zoe Martin,Going,2026-10-09 14:00:00,Alice Chen,Nobody Known,,\n"
    "Priya Raman,Can't Go,2026-10-03 10:00:00,,,,\n"
    ",Going,2026-10-09 15:00:00,Alice Chen,,,\n"
    "Leo Rossi,Teleported,2026-10-10 16:00:00,Alice Chen,,,\n"
    "Ivy Wong,Going,last tuesday,Alice Chen,,,\n"
)


def _batch(text: str = NEW):
    return normalize_partiful_csv(read_csv_text(text.encode()), EVENT, "party.csv")


def test_rows_statuses_and_zone() -> None:
    batch = _batch()
    assert batch.input_records == 9 and batch.reconciles
    joined = batch.observations.join(batch.attendance, on="observation_id")
    by_name = {(r["full_name"], r["status"]): r for r in joined.iter_rows(named=True)}
    priya = by_name[("Priya Raman", "going")]
    assert priya["handle_instagram"] == "priya.codes" and priya["company"] == "Raman Dev"
    assert priya["email"] is None and priya["phone"] is None
    # 09:14:22 in New York (EDT) is 13:14:22 UTC.
    assert str(priya["registered_at"]) == "2026-10-02 13:14:22+00:00"
    assert by_name[("Alice Chen", "going")]["role"] == "host"
    assert by_name[("Jordan Lee", "maybe")]["registered_at"] is None
    assert by_name[("Priya Raman", "declined")]["raw_status"] == "Can't Go"
    reasons = dict(zip(batch.quarantine["record_index"], batch.quarantine["reason"], strict=True))
    assert reasons == {6: "missing Name"}
    issues = batch.field_issues.select("record_index", "field", "raw").rows()
    assert issues == [(7, "status", "Teleported"), (8, "observed_at", "last tuesday")]


def test_plus_one_links_to_host_observation() -> None:
    batch = _batch()
    att = batch.attendance.join(
        batch.observations.select("observation_id", "full_name"), on="observation_id"
    )
    rob = att.filter(pl.col("full_name") == "rob smith").to_dicts()[0]
    priya_first = att.filter(pl.col("full_name") == "Priya Raman").sort("registered_at")[
        "observation_id"
    ][0]
    assert rob["role"] == "plus_one" and rob["plus_one_of"] == priya_first
    # A host name nobody in the file has leaves the link empty but keeps the row.
    zoe = att.filter(pl.col("full_name") == "Zoe Martin").to_dicts()[0]
    assert zoe["role"] == "plus_one" and zoe["plus_one_of"] is None


def test_ids_are_stable_and_distinguish_repeated_names() -> None:
    first = _batch().observations["observation_id"].to_list()
    again = _batch().observations["observation_id"].to_list()
    assert first == again
    assert len(set(first)) == len(first)
    assert all(i.startswith("partiful:pfParty:") for i in first)
    priyas = _batch().observations.filter(pl.col("full_name") == "Priya Raman")["observation_id"]
    assert sorted(p.rsplit("-", 1)[1] for p in priyas) == ["1", "2"]
    # The id is the documented formula: stored ids from earlier imports stay valid.
    assert sorted(priyas) == [f"partiful:pfParty:{name_hash('priya raman')}-{n}" for n in (1, 2)]
    # Appending unrelated rows does not change existing ids.
    longer = _batch(NEW + "Kai Mo,Going,2026-10-11 10:00:00,,,,\n").observations["observation_id"]
    assert set(first) <= set(longer.to_list())


def test_count_variant_synthesizes_plus_ones() -> None:
    text = (
        "Name,Status,RSVP date,Invited By,+1s\n"
        "Sam Okafor,Host,2026-11-01 10:00:00,,0\n"
        "Grace Kim,Going,2026-11-04 12:45:00,Sam Okafor,2\n"
        "Hannah Becker,Going,2026-11-06 09:00:00,Sam Okafor,lots\n"
        "Bob Smith,Going,not a date,Sam Okafor,1\n"
    )
    batch = normalize_partiful_csv(read_csv_text(text.encode()), EVENT, "old.csv")
    # 4 rows + 3 declared plus-ones; an unreadable count declares none.
    assert batch.input_records == 7 and batch.reconciles and batch.quarantine.height == 0
    joined = batch.observations.join(batch.attendance, on="observation_id")
    grace = joined.filter(pl.col("full_name") == "Grace Kim")["observation_id"][0]
    plus = joined.filter(pl.col("role") == "plus_one").sort("full_name")
    assert plus["full_name"].to_list() == [
        "Bob Smith's plus-one 1",
        "Grace Kim's plus-one 1",
        "Grace Kim's plus-one 2",
    ]
    assert plus["plus_one_of"].to_list()[1:] == [grace, grace]
    assert plus["first_name"].to_list() == [None, None, None]
    assert joined.filter(pl.col("full_name").str.starts_with("Hannah")).height == 1
    issues = sorted(batch.field_issues.select("field", "raw", "reason").rows())
    assert issues == [
        ("observed_at", "not a date", "unparseable timestamp"),
        ("observed_at", "not a date", "unparseable timestamp"),
        ("plus_one_count", "lots", "unparseable plus-one count in '+1s'"),
    ]


def test_event_metadata_and_file_name_fallback() -> None:
    row = partiful_event(EVENT)
    assert (
        row["event_id"] == "partiful:pfParty"
        and str(row["starts_at"]) == "2026-10-24 23:00:00+00:00"
    )
    meta = event_meta_from_stem("game-night_2026-11-07")
    assert meta["id"] == "game-night_2026-11-07" and meta["title"] == "Game Night"
    assert str(partiful_event(meta)["starts_at"]) == "2026-11-07 00:00:00+00:00"
    assert event_meta_from_stem("whatever")["id"] == "whatever"


def test_missing_columns_quarantine_everything() -> None:
    batch = _batch("Guest,RSVP\nAnn,Going\n")
    assert batch.reconciles and batch.observations.height == 0
    assert batch.quarantine["reason"].to_list() == ["wrong column set: missing Name"]


def test_name_keys_match_scalar_normalization() -> None:
    names = [
        "Priya Raman",
        "PRIYA  raman ",
        "\tBob\x1cSmith\r\n",
        "Zoë  Núñez",
        "ＡＢＣ Def",
        "\u00a0x\u2003y ",
        "ΟΔΟΣ",
        "İstanbul",
        "ﬁsh",
        "x\x85y",
        "a \t b",
        "a\t \tb",
        "A\x1f\x1f B",
        "a \x0b",
        "  ",
        "",
        None,
    ]
    keys = normalized_names(pl.Series(names)).to_list()
    assert keys == [None if n is None else normalized_name(n) for n in names]


def test_plus_one_of_a_quarantined_host_is_not_linked() -> None:
    text = (
        "Name,Status,RSVP date,Invited By,Is Plus One Of,Extra\n"
        "Mei Tanaka,Going,2026-10-02 09:00:00,,,,,stray cells\n"
        "Ben Carter,Going,2026-10-02 09:05:00,,Mei Tanaka\n"
        "Ana Silva,Going,2026-10-02 09:06:00,,\n"
        "Raj Gupta,Going,2026-10-02 09:07:00,,ana  SILVA\n"
    )
    batch = normalize_partiful_csv(read_csv_text(text.encode()), EVENT, "party.csv")
    batch = normalize_file(
        text.encode(),
        source="partiful",
        origin="party.csv",
        normalize=lambda frame: normalize_partiful_csv(frame, EVENT, "party.csv"),
    )
    assert batch.reconciles and batch.quarantine["reason"][0].startswith("ragged row")
    joined = batch.observations.join(batch.attendance, on="observation_id")
    links = dict(zip(joined["full_name"], joined["plus_one_of"], strict=True))
    ana = joined.filter(pl.col("full_name") == "Ana Silva")["observation_id"][0]
    assert links["Ben Carter"] is None and links["Raj Gupta"] == ana


@given(st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=60))
def test_occurrences_number_each_keys_rows_in_row_order(keys: list[int | None]) -> None:
    seen: dict[int, int] = {}
    expected: list[int | None] = []
    for key in keys:
        if key is None:
            expected.append(None)
            continue
        seen[key] = seen.get(key, 0) + 1
        expected.append(seen[key])
    assert occurrences(pl.Series(keys, dtype=pl.UInt32)).to_list() == expected


def test_normalized_names_match_python_for_every_early_code_point() -> None:
    # Latin-1 letters take the polars path: it must agree with Python character by
    # character, in any position and next to spaces.
    chars = [chr(c) for c in range(0x20, 0x250)]
    names = [f"{c}Ab {c}  x{c}{c}Y " for c in chars] + [f"\t{c}\u00c9\u00df {c}" for c in chars]
    keys = normalized_names(pl.Series(names)).to_list()
    assert keys == [normalized_name(n) for n in names]


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "A", "a ", "é", ""])), max_size=40))
def test_number_distinct_numbers_equal_values_alike(values: list[str | None]) -> None:
    numbers, distinct = number_distinct(pl.Series(values, dtype=pl.String))
    assert distinct.n_unique() == distinct.len() == len({v for v in values if v is not None})
    for value, number in zip(values, numbers.to_list(), strict=True):
        assert (number is None) == (value is None)
        if number is not None:
            assert distinct[number] == value


def test_number_distinct_survives_hash_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pl.Series(["Bo Kim", "", None, "Ann Lee", "Bo Kim", "Ann Lee"])
    # Every value hashes alike: the grouping by hash goes wrong and must be caught.
    monkeypatch.setattr(pl.Series, "hash", lambda s, *_: pl.Series([7] * s.len(), dtype=pl.UInt64))
    numbers, distinct = number_distinct(values)
    assert [None if n is None else distinct[n] for n in numbers.to_list()] == values.to_list()
    assert distinct.n_unique() == distinct.len() == 3
