"""`community import` and `community sync`, and the demo's background platform fakes.

Both commands run the code the Dagster assets run (export landing, API sync, the
normalized store, the graph load), so a CLI import and a materialization agree.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:  # the pipeline modules load on use, so `community services …` starts fast
    from domain.normalize.batch import NormalizedBatch
    from ingest.connectors.sync import SyncReport
    from ingest.landing import DataStore

console = Console()
EXPORT_SOURCES = ("luma", "eventbrite", "partiful")
API_SOURCES = ("luma", "eventbrite")


def _summary(rows: list[tuple[str, int, int, int, int]], title: str) -> Table:
    table = Table(
        "source", "input", "normalized", "quarantined", "reconciles", "field issues", title=title
    )
    for source, n_in, n_norm, n_q, n_issues in rows:
        ok = n_in == n_norm + n_q
        table.add_row(
            source,
            str(n_in),
            str(n_norm),
            str(n_q),
            "[green]yes[/]" if ok else "[red]no[/]",
            str(n_issues),
        )
    return table


def _print_field_issues(batches: list[NormalizedBatch]) -> None:
    """Counts per source, field and reason; the raw values stay in the store."""
    for b in batches:
        if b.field_issues.height == 0:
            continue
        counts = (
            b.field_issues.group_by("source", "field", "reason").len().sort("len", descending=True)
        )
        for source, fld, reason, n in counts.head(10).iter_rows():
            console.print(
                f"  field issue: {source} {fld}: {reason} ({n} records, kept with it empty)"
            )


def _publish(settings: Settings, store: DataStore) -> None:
    """Unions the store and loads it into Neo4j, as `normalized_imports` + `imported_graph` do."""
    from infra.neo4j_store import GraphStore
    from ingest.landing import publish

    graph = GraphStore.from_settings(settings)
    try:
        combined, written = publish(store, graph)
    finally:
        graph.close()
    console.print(
        f"graph: {written['events']} events, {written['identities']} identities, "
        f"{written['attendance']} attendance, {written['plus_one_links']} plus-one links "
        f"(store holds {combined.observations.height} observations); no longer at the source: "
        f"{written['removed_attendance']} attendance, {written['removed_identities']} "
        f"identities, {written['removed_events']} events removed"
    )


def import_command(
    folder: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Folder with luma/, eventbrite/, partiful/."
    ),
    source: list[str] = typer.Option(
        [], "--source", "-s", help="Only these sources (repeatable); default: every one found."
    ),
    load: bool = typer.Option(True, "--load/--no-load", help="Load the result into Neo4j."),
) -> None:
    """Import a folder of export files as downloaded (or sorted into luma/, eventbrite/,
    partiful/): land them raw, normalize, quarantine, load the graph. Files that are not
    understood are listed with the reason."""
    from ingest.exports import EXPECTED, plan_folder
    from ingest.landing import DataStore, import_export_folder

    settings = get_settings()
    unknown = sorted(set(source) - set(EXPORT_SOURCES))
    if unknown:
        console.print(f"[red]error:[/] unknown source(s) {unknown}; known: {EXPORT_SOURCES}")
        raise typer.Exit(2)
    plan = plan_folder(folder)
    found = [s for s in EXPORT_SOURCES if plan.for_source(s) or (folder / s).is_dir()]
    wanted = source or found
    if not any(plan.for_source(s) for s in wanted):
        what = "is empty" if plan.total_files == 0 else f"holds {plan.total_files} files but"
        console.print(
            f"[red]error:[/] {folder} {what} no export of "
            f"{', '.join(wanted or EXPORT_SOURCES)} was found; {EXPECTED}"
        )
        for s in plan.skipped[:20]:
            console.print(f"  skipped: {s.path}: {s.reason}")
        raise typer.Exit(1)
    store = DataStore(settings.data_path)
    rows: list[tuple[str, int, int, int, int]] = []
    batches: list[NormalizedBatch] = []
    with _progress() as progress:
        task = progress.add_task("exports", total=len(wanted))
        for name in wanted:
            progress.update(task, description=f"{name} exports")
            batch = import_export_folder(store, folder, name, plan).batch
            batches.append(batch)
            rows.append(
                (
                    name,
                    batch.input_records,
                    batch.observations.height,
                    batch.quarantine.height,
                    batch.field_issues.height,
                )
            )
            progress.advance(task)
    console.print(_summary(rows, f"exports from {folder}"))
    for name in wanted:
        n = len(plan.for_source(name))
        console.print(f"  {name}: {n} file{'s' if n != 1 else ''} imported")
    for s in plan.skipped:
        console.print(f"  [yellow]skipped:[/] {s.path}: {s.reason}")
    _print_field_issues(batches)
    for b in batches:
        for note in b.notes[:10]:
            console.print(f"  note: {note}")
    if load:
        _publish(settings, store)
    if not all(b.reconciles for b in batches):
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def sync_command(
    source: str = typer.Argument(..., help="luma or eventbrite"),
    start: str = typer.Option(..., "--start", help="First day (YYYY-MM-DD), inclusive."),
    end: str = typer.Option(..., "--end", help="Last day (YYYY-MM-DD), inclusive."),
    full: bool = typer.Option(
        False, "--full", help="Refetch everything in the range, ignoring the incremental cursors."
    ),
    load: bool = typer.Option(True, "--load/--no-load", help="Load the result into Neo4j."),
) -> None:
    """Sync one platform's API for a range of event days (incremental unless --full)."""
    from infra.redis_keys import RedisKeys
    from infra.redis_store import open_redis
    from ingest.connectors.base import SourceError
    from ingest.connectors.cursors import CursorStore
    from ingest.connectors.sync import sync_source
    from ingest.landing import DataStore

    settings = get_settings()
    if source not in API_SOURCES:
        console.print(f"[red]error:[/] no API sync for {source!r}; known: {', '.join(API_SOURCES)}")
        raise typer.Exit(2)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        console.print(f"[red]error:[/] dates must be YYYY-MM-DD ({exc})")
        raise typer.Exit(2) from exc
    if last < first:
        console.print(f"[red]error:[/] --end {last} is before --start {first}")
        raise typer.Exit(2)
    store = DataStore(settings.data_path)
    client = open_redis(settings)
    cursors = CursorStore(client, RedisKeys(settings.redis_key_prefix))
    try:
        with _progress() as progress:
            task = progress.add_task(f"{source}: listing events", total=None)

            def tick(label: str, done: int, total: int) -> None:
                progress.update(task, description=label, completed=done, total=total)

            report = sync_source(
                source, settings, store, cursors, first, last, full=full, progress=tick
            )
    except SourceError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        client.close()
    _print_report(report)
    if load:
        _publish(settings, store)
    if not report.reconciles:
        raise typer.Exit(1)


def _print_report(report: SyncReport) -> None:
    title = f"{report.source} {report.mode} sync {report.start}..{report.end}"
    fetched = report.fetched
    console.print(
        _summary(
            [
                (
                    report.source,
                    report.input_records,
                    report.normalized,
                    report.quarantined,
                    fetched.field_issues.height,
                )
            ],
            title,
        )
    )
    _print_field_issues([fetched])
    http = ", ".join(f"{k} {v}" for k, v in report.stats.items())
    console.print(
        f"events fetched {report.events_fetched}, skipped as final {report.events_skipped}; "
        f"http: {http}"
    )
    for item in report.incomplete:
        console.print(
            f"  [yellow]warning:[/] {item.event_id} ({item.day}) incomplete: {item.reason}; "
            "its stored guests are kept and it is fetched again next run"
        )
    for note in report.notes[:10]:
        console.print(f"  note: {note}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_fakes(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Starts `python -m fakes serve` in the background unless something already answers."""
    ports = (settings.fake_luma_port, settings.fake_eventbrite_port)
    aimed = f":{ports[0]}/" in settings.luma_base_url or f":{ports[1]}/" in (
        settings.eventbrite_base_url
    )
    if not settings.fakes_autostart or not aimed:
        return None  # the syncs talk to real platforms; nothing to imitate
    if all(_port_open(p) for p in ports):
        console.print(f"platform fakes: already answering on ports {ports}; using them")
        return None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fakes",
            "serve",
            "--luma-port",
            str(settings.fake_luma_port),
            "--eventbrite-port",
            str(settings.fake_eventbrite_port),
            "--seed",
            str(settings.fakes_seed),
            "--luma-key",
            settings.luma_api_key.get_secret_value(),
            "--eventbrite-token",
            settings.eventbrite_token.get_secret_value(),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not all(_port_open(p) for p in ports):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            console.print(f"[red]error:[/] the platform fakes did not start on ports {ports}")
            raise typer.Exit(1)
        time.sleep(0.2)
    console.print(
        f"platform fakes: Luma on :{ports[0]}, Eventbrite on :{ports[1]} (pid {proc.pid})"
    )
    return proc
