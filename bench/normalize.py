"""Normalization throughput against polars' bare CSV reader, per platform.

For each platform a guest export of N rows (default 1,000,000; `--quick` 50,000) is
generated into a temporary folder (deleted afterwards), with realistic mess: mixed phone
formats, upper-case emails, blank answers, repeated names, ~1 % bad rows. Then, in the
same run and alternating, it times

    read_csv(file):   pl.read_csv(path)        polars' default reader on the file
    read_csv(bytes):  pl.read_csv(BytesIO(raw))  the same on the file's bytes in memory
                      (read in place, as the pipeline reads them: faster than plain
                      bytes, which polars copies first)
    normalize:        the platform's normalizer on the already-read string frame
    reader:           ingest.exports.read_export(raw) alone (decode, sniff, read, checks):
                      the share of read+normalize that is not normalization
    read+normalize:   ingest.exports.normalize_file(raw, ...) on the bytes in memory
                      (decode, sniff, read, normalize): how the pipeline runs, since
                      it holds each file's bytes for the raw landing anyway
    from file:        path.read_bytes() + the same, against read_csv(file)

reporting medians of `--runs` runs and ratios. Goal: normalize <= 3x read_csv(file) and
read+normalize <= 3x read_csv(bytes) (each compared with the reader from the same
starting point). Also the CPU-time ratio of read+normalize and peak memory (process RSS
sampled by psutil every 2 ms during the call, minus RSS just before it).

    .venv/bin/python -m bench.normalize [--quick] [--rows N] [--runs K]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil
from rich.console import Console
from rich.table import Table

from bench.report import Figure, record
from domain.normalize.batch import NormalizedBatch
from domain.normalize.eventbrite import normalize_eventbrite_csv
from domain.normalize.luma import normalize_luma_csv
from domain.normalize.partiful import normalize_partiful_csv
from ingest.exports import normalize_file, read_export

FIRST = [
    "Alice", "Bob", "Robert", "Priya", "Sam", "Lena", "Jordan", "Marcus", "Mei", "Diego",
    "Grace", "Aisha", "Omar", "Nina", "Kevin", "Hannah", "Tom", "Fatima", "Zoë", "José",
    "Ivy", "Leo", "Maya", "Ben", "Chris", "Olu", "Sven", "Ana", "Raj", "Yuki",
]  # fmt: skip
LAST = [
    "Chen", "Smith", "Raman", "Okafor", "Fischer", "Lee", "O'Neil", "Tanaka", "Alvarez",
    "Kim", "Bello", "Haddad", "Petrova", "Park", "Becker", "Nguyen", "Zahra", "Núñez",
    "Wong", "Rossi", "Patel", "Carter", "Doe", "Adeyemi", "Larsen", "Silva", "Gupta",
]  # fmt: skip
DOMAINS = ["gmail.com", "example.com", "outlook.com", "startup.io", "fastmail.com"]

LUMA_EVENT = {
    "api_id": "evt-bench",
    "name": "Bench",
    "start_at": "2026-11-12T15:00:00.000Z",
    "timezone": "America/New_York",
}
EB_EVENTS = [
    {"id": str(100 + i), "name": {"text": f"Bench Event {i}"}, "start": {"timezone": tz}}
    for i, tz in enumerate(["America/New_York", "Europe/London", "America/Los_Angeles"])
]
PF_EVENT = {"id": "pfBench", "title": "Bench", "timezone": "America/New_York"}


def _pick(rng: np.random.Generator, values: list[str], n: int) -> pl.Series:
    return pl.Series(values).gather(rng.integers(0, len(values), n))


def _people(rng: np.random.Generator, n: int) -> pl.DataFrame:
    first = _pick(rng, FIRST, n)
    last = _pick(rng, LAST, n)
    num = pl.Series(rng.integers(0, 50_000, n)).cast(pl.String)
    area = pl.Series(rng.integers(200, 999, n)).cast(pl.String)
    line = pl.Series(rng.integers(1000, 9999, n)).cast(pl.String)
    style = rng.integers(0, 10, n)
    phone = (
        pl.DataFrame({"a": area, "l": line, "s": style})
        .select(
            pl.when(pl.col("s") == 0)
            .then(pl.format("({}) 555-{}", "a", "l"))
            .when(pl.col("s") == 1)
            .then(pl.format("+1 {} 555 {}", "a", "l"))
            .when(pl.col("s") == 2)
            .then(pl.format("{}555{}", "a", "l"))
            .when(pl.col("s") == 3)
            .then(pl.format("+44 20 7946 {}", "l"))
            .when(pl.col("s") < 7)
            .then(pl.format("{}-555-{}", "a", "l"))
            .otherwise(None)
        )
        .to_series()
    )
    df = pl.DataFrame({"first": first, "last": last, "num": num, "phone": phone})
    df = df.with_columns(
        pl.format("{} {}", "first", "last").alias("name"),
        pl.format(
            "{}.{}{}@{}",
            pl.col("first").str.to_lowercase().str.replace_all("[^a-z]", ""),
            pl.col("last").str.to_lowercase().str.replace_all("[^a-z]", ""),
            "num",
            _pick(rng, DOMAINS, n),
        ).alias("email"),
    )
    # ~1 % upper-case emails, ~0.3 % broken ones.
    r = pl.Series(rng.random(n))
    return df.with_columns(
        pl.when(r < 0.01)
        .then(pl.col("email").str.to_uppercase())
        .when(r < 0.013)
        .then(pl.col("email").str.replace("@", " at "))
        .otherwise(pl.col("email"))
        .alias("email")
    )


def _times(rng: np.random.Generator, n: int, fmt: str) -> pl.Series:
    base = np.datetime64("2026-10-01T00:00:00")
    secs = rng.integers(0, 60 * 86400, n).astype("timedelta64[s]")
    series = pl.Series((base + secs).astype("datetime64[us]"))
    return series.dt.strftime(fmt)


def _spoil(rng: np.random.Generator, s: pl.Series, bad: str, rate: float) -> pl.Series:
    mask = pl.Series(rng.random(len(s)) < rate)
    return pl.select(pl.when(mask).then(pl.lit(bad)).otherwise(s)).to_series().rename(s.name)


def make_luma(rng: np.random.Generator, n: int) -> pl.DataFrame:
    p = _people(rng, n)
    statuses = ["approved"] * 6 + ["invited", "declined", "waitlist", "pending_approval"]
    created = _times(rng, n, "%Y-%m-%dT%H:%M:%S.000Z")
    checked = _times(rng, n, "%Y-%m-%dT%H:%M:%S.000Z")
    checked = pl.select(
        pl.when(pl.Series(rng.random(n) < 0.5)).then(checked).otherwise(pl.lit(""))
    ).to_series()
    ids = pl.select(pl.format("gst-{}", pl.int_range(n).cast(pl.String))).to_series()
    return pl.DataFrame(
        {
            "guest_id": _spoil(rng, ids, "", 0.002),
            "name": p["name"],
            "first_name": p["first"],
            "last_name": p["last"],
            "email": p["email"],
            "phone_number": p["phone"],
            "created_at": _spoil(rng, created, "yesterday", 0.002),
            "approval_status": _spoil(rng, _pick(rng, statuses, n), "teleported", 0.002),
            "utm_source": _pick(rng, ["", "newsletter", "ig"], n),
            "checked_in_at": checked,
            "qr_code_url": pl.select(
                pl.format("https://lu.ma/check-in/{}", pl.lit(ids))
            ).to_series(),
            "amount": pl.Series(["$0.00"] * n),
            "currency": pl.Series(["USD"] * n),
            "ticket_name": pl.Series(["Standard"] * n),
            "What company do you work for?": _pick(
                rng, ["Acme", "Chen Labs", "No answer provided.", ""], n
            ),
            "Instagram": "@" + p["first"].str.to_lowercase(),
        }
    )


def make_eventbrite(rng: np.random.Generator, n: int) -> pl.DataFrame:
    p = _people(rng, n)
    ids = pl.select(pl.int_range(n, eager=True) + 700_000_000).to_series().cast(pl.String)
    order_date = _times(rng, n, "%Y-%m-%d %H:%M:%S-04:00")
    return pl.DataFrame(
        {
            "Order #": ids,
            "Order Date": _spoil(rng, order_date, "someday", 0.002),
            "First Name": p["first"],
            "Last Name": p["last"],
            "Name": p["name"],
            "Email": p["email"],
            "Company": _pick(rng, ["Acme", "Northwind", "", "Solarly"], n),
            "Job title": _pick(rng, ["CTO", "Engineer", "", "Founder"], n),
            "Quantity": pl.Series(["1"] * n),
            "Ticket Type": pl.Series(["General Admission"] * n),
            "Attendee #": _spoil(rng, ids, "", 0.002),
            "Order Type": pl.Series(["Free Order"] * n),
            "Currency": pl.Series(["USD"] * n),
            "Total Paid": pl.Series(["0.00"] * n),
            "Attendee Status": _spoil(
                rng, _pick(rng, ["Attending"] * 8 + ["Checked In", "Refunded"], n), "Lost", 0.002
            ),
            "Checked In": _pick(rng, ["Yes", "No"], n),
            "Event Name": _pick(rng, [e["name"]["text"] for e in EB_EVENTS], n),  # type: ignore[index]
            "Cell Phone": p["phone"],
        }
    )


def make_partiful(rng: np.random.Generator, n: int, *, unique: bool = False) -> pl.DataFrame:
    """About 80,000 distinct names (a two-digit suffix): repeated names, resolvable
    hosts. `unique`: every name distinct, as on most real guest lists, so the work done
    once per name is done once per row."""
    p = _people(rng, n)
    suffix = pl.int_range(n, eager=True).cast(pl.String) if unique else p["num"].str.slice(0, 2)
    names = pl.select(pl.format("{} {}", p["name"], suffix)).to_series()
    is_plus = rng.random(n) < 0.1
    host_idx = np.maximum(np.arange(n) - rng.integers(1, 20, n), 0)
    host = pl.select(
        pl.when(pl.Series(is_plus)).then(names.gather(host_idx)).otherwise(pl.lit(""))
    ).to_series()
    statuses = ["Going"] * 6 + ["Maybe", "Can't Go", "Invited", "Pending"]
    return pl.DataFrame(
        {
            "Name": _spoil(rng, names, "", 0.002),
            "Status": _spoil(rng, _pick(rng, statuses, n), "Teleported", 0.002),
            "RSVP date": _spoil(rng, _times(rng, n, "%Y-%m-%d %H:%M:%S"), "last tuesday", 0.002),
            "Invited By": _pick(rng, ["Alice Chen", "Sam Okafor", ""], n),
            "Is Plus One Of": host,
            "What's your Instagram?": "@" + p["first"].str.to_lowercase(),
            "Where do you work?": _pick(rng, ["Acme", "", "Chen Labs"], n),
        }
    )


PLATFORMS: dict[
    str, tuple[Callable[..., pl.DataFrame], Callable[[pl.DataFrame], NormalizedBatch]]
] = {
    "luma": (make_luma, lambda f: normalize_luma_csv(f, LUMA_EVENT, "bench.csv")),
    "eventbrite": (
        make_eventbrite,
        lambda f: normalize_eventbrite_csv(f, None, "bench.csv", known_events=EB_EVENTS),
    ),
    "partiful": (make_partiful, lambda f: normalize_partiful_csv(f, PF_EVENT, "bench.csv")),
    "partiful-unique": (
        partial(make_partiful, unique=True),
        lambda f: normalize_partiful_csv(f, PF_EVENT, "bench.csv"),
    ),
}


def read_and_normalize(raw: bytes, source: str, normalize: Callable[..., Any]) -> Any:
    return normalize_file(raw, source=source, origin="bench.csv", normalize=normalize)


def read_bytes_in_place(raw: bytes) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(raw))


def from_file(path: Path, source: str, normalize: Callable[..., Any]) -> Any:
    return read_and_normalize(path.read_bytes(), source, normalize)


def measure(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(wall seconds, CPU seconds of this process, peak RSS growth in MiB, result)."""
    gc.collect()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    cpu = time.process_time()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    done.set()
    thread.join()
    peak = max(peak, proc.memory_info().rss)
    return elapsed, cpu, (peak - base) / 2**20, result


@dataclass
class Timings:
    """Medians of one platform's runs (seconds), plus what the last batch held."""

    file_baseline: float
    bytes_baseline: float
    normalize: float
    reader: float
    read_normalize: float
    from_file: float
    cpu_ratio: float
    baseline_peak: float
    peak: float
    batch: NormalizedBatch


def time_platform(path: Path, name: str, normalize: Callable[..., Any], runs: int) -> Timings:
    raw = path.read_bytes()
    frame = read_export(raw, source=name, origin=path.name).frame
    samples: dict[str, list[float]] = {}
    batch: NormalizedBatch | None = None

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    for _ in range(runs):
        for key, fn in (
            ("file", partial(pl.read_csv, path)),
            ("bytes", partial(read_bytes_in_place, raw)),
            ("normalize", partial(normalize, frame)),
            ("reader", partial(read_export, raw, source=name, origin=path.name)),
            ("from_file", partial(from_file, path, name, normalize)),
        ):
            wall, cpu, peak, _result = measure(fn)
            del _result
            add(key, wall)
            add(f"{key} cpu", cpu)
            add(f"{key} peak", peak)
        wall, cpu, peak, batch = measure(partial(read_and_normalize, raw, name, normalize))
        add("read", wall)
        add("read cpu", cpu)
        add("read peak", peak)
    assert batch is not None
    med = {key: statistics.median(values) for key, values in samples.items()}
    return Timings(
        file_baseline=med["file"],
        bytes_baseline=med["bytes"],
        normalize=med["normalize"],
        reader=med["reader"],
        read_normalize=med["read"],
        from_file=med["from_file"],
        cpu_ratio=med["read cpu"] / med["bytes cpu"],
        baseline_peak=max(samples["bytes peak"]),
        peak=max(samples["read peak"]),
        batch=batch,
    )


COLUMNS = (
    "platform",
    "MiB",
    "csv file s",
    "csv bytes s",
    "norm s",
    "norm ÷ file",
    "reader ÷ bytes",
    "r+n s",
    "r+n ÷ bytes",
    "from file ÷ file",
    "CPU ratio",
    "goal",
    "csv peak MiB",
    "r+n peak MiB",
    "normalized",
    "quarantined",
    "field issues",
    "reconciles",
)
"""csv file/bytes = pl.read_csv on the file / on its bytes; norm = normalize; r+n =
read+normalize from bytes."""


def table_row(name: str, size: float, t: Timings) -> list[str]:
    norm_ratio = t.normalize / t.file_baseline
    read_ratio = t.read_normalize / t.bytes_baseline
    return [
        name,
        f"{size:.0f}",
        f"{t.file_baseline:.3f}",
        f"{t.bytes_baseline:.3f}",
        f"{t.normalize:.3f}",
        f"{norm_ratio:.2f}x",
        f"{t.reader / t.bytes_baseline:.2f}x",
        f"{t.read_normalize:.3f}",
        f"{read_ratio:.2f}x",
        f"{t.from_file / t.file_baseline:.2f}x",
        f"{t.cpu_ratio:.2f}x",
        goal_status(norm_ratio, read_ratio),
        f"{t.baseline_peak:.0f}",
        f"{t.peak:.0f}",
        f"{t.batch.observations.height:,}",
        f"{t.batch.quarantine.height:,}",
        f"{t.batch.field_issues.height:,}",
        str(t.batch.reconciles),
    ]


def goal_status(norm_ratio: float, read_ratio: float) -> str:
    """Met, or which ratio is over 3: the two miss for different reasons (normalization
    work alone, or the reader and the normalizer together)."""
    over = [label for label, ratio in (("norm", norm_ratio), ("r+n", read_ratio)) if ratio > 3]
    return "met" if not over else "missed: " + ", ".join(over)


def record_figures(name: str, rows: int, t: Timings) -> None:
    for label, value, baseline, against in (
        ("normalize", t.normalize, t.file_baseline, "pl.read_csv(file)"),
        ("read+normalize from bytes", t.read_normalize, t.bytes_baseline, "pl.read_csv(bytes)"),
        ("read+normalize from file", t.from_file, t.file_baseline, "pl.read_csv(file)"),
    ):
        record(
            Figure(
                "normalize",
                f"{name}, {rows:,} rows: {label} (wall s)",
                value,
                "s",
                against,
                baseline,
                "ratio <= 3",
                value / baseline <= 3,
            )
        )


def allocator_decay() -> str:
    """The decay options jemalloc ends up with: polars puts its own first in
    `_RJEM_MALLOC_CONF` when it loads, and later options win."""
    options: dict[str, str] = {}
    for item in os.environ.get("_RJEM_MALLOC_CONF", "").split(","):
        key, _, value = item.partition(":")
        options[key] = value
    return ", ".join(
        f"{k}={options[k]}" for k in ("dirty_decay_ms", "muzzy_decay_ms") if k in options
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(PLATFORMS), default=None)
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    console = Console(width=240)
    table = Table(title=f"Normalization vs polars' read_csv, {rows:,} rows, median of {args.runs}")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="bench-normalize-") as tmp:
        for name, (make, normalize) in PLATFORMS.items():
            if args.only and name != args.only:
                continue
            path = Path(tmp) / f"{name}.csv"
            make(rng, rows).write_csv(path)
            timings = time_platform(path, name, normalize, args.runs)
            table.add_row(*table_row(name, path.stat().st_size / 2**20, timings))
            record_figures(name, rows, timings)
            console.print(f"{name}: done", style="dim")
            path.unlink()
    console.print(table)
    console.print(f"allocator (jemalloc) decay in effect: {allocator_decay()}; `./run` sets it")
    console.print(
        "csv file / csv bytes = pl.read_csv on the file / on its bytes in memory. "
        "norm = domain normalizer on the already-read frame; r+n (read+normalize) = "
        "ingest.exports.normalize_file on the file's bytes in memory (decode, sniff, read, "
        "normalize), compared with read_csv of the same bytes; reader = its reading part "
        "alone (read_export); from file = reading the "
        "bytes from disk as well, compared with read_csv of the file. Goal: both normalize "
        "and read+normalize <= 3x. CPU ratio = process CPU time, read+normalize / "
        "read_csv(bytes) (less sensitive to other load on the machine). peak MiB = process "
        "RSS high-water (psutil, sampled every 2 ms) minus RSS before the call."
    )


if __name__ == "__main__":
    main()
