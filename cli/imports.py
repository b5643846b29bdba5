"""`community import` and `community sync`, and the demo's background platform fakes.

Both commands parse their arguments, call the services the Dagster assets call
(`services.imports`, `services.syncs`) and print what they did, so a CLI import and a
materialization agree.
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
    from services.imports import FolderImport

console = Console()


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
    for batch in batches:
        if batch.field_issues.height == 0:
            continue
        issues = batch.field_issues.group_by("source", "field", "reason").len()
        for source, fld, reason, count in issues.sort("len", descending=True).head(10).iter_rows():
            records = f"{count} record" + ("" if count == 1 else "s")
            console.print(
                f"  field issue: {source} {fld}: {reason} ({records} kept with the field empty)"
            )


def _print_quarantine(batches: list[NormalizedBatch], store: DataStore) -> None:
    """Counts per source and reason, with where the first records were (origin and
    record index, never their values): enough to find them in the file or the store."""
    import polars as pl

    shown = False
    for batch in batches:
        if batch.quarantine.height == 0:
            continue
        reasons = (
            batch.quarantine.group_by("source", "reason", maintain_order=True)
            .agg(pl.len(), pl.format("{} #{}", "origin", "record_index").head(3).alias("at"))
            .sort("len", descending=True)
        )
        for source, reason, count, at in reasons.head(10).iter_rows():
            more = ", …" if count > len(at) else ""
            records = f"{count} record" + ("" if count == 1 else "s")
            console.print(f"  quarantined: {source}: {reason} ({records}: {', '.join(at)}{more})")
            shown = True
    if shown:
        console.print(
            f"  quarantined records as received: {store.root / 'normalized' / 'quarantine'} "
            "(#n: the file's or page's record n, counted from 0)"
        )


def _publish(settings: Settings, store: DataStore) -> None:
    """Unions the store and loads it into Neo4j, as `normalized_imports` + `imported_graph` do."""
    from neo4j.exceptions import ServiceUnavailable

    from infra.neo4j_store import GraphStore
    from services.imports import publish

    graph = GraphStore.from_settings(settings)
    try:
        graph.driver.verify_connectivity()
        combined, written = publish(store, graph)
    except (ServiceUnavailable, OSError) as exc:
        # Checked before any write: the store holds the import, the graph is untouched.
        console.print(
            f"[red]error:[/] the graph was not loaded: Neo4j at {settings.neo4j_uri} is not "
            f"reachable ({type(exc).__name__}). The import is kept in {store.root}; start the "
            "services (`community services up`) and run the command again, or pass --no-load."
        )
        raise typer.Exit(1) from exc
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
    from ingest.landing import DataStore
    from services.imports import NothingToImportError, import_folder

    settings = get_settings()
    store = DataStore(settings.data_path)
    try:
        with _progress() as progress:
            task = progress.add_task("exports", total=None)

            def tick(label: str, done: int, total: int) -> None:
                progress.update(task, description=label, completed=done, total=total)

            done = import_folder(store, folder, source, progress=tick)
    except NothingToImportError as exc:
        console.print(f"[red]error:[/] {exc}")
        for skipped in exc.skipped[:20]:
            console.print(f"  skipped: {skipped.path}: {skipped.reason}")
        raise typer.Exit(1) from exc
    except ValueError as exc:  # an unknown source asked for
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    _print_import(done, store)
    if load:
        _publish(settings, store)
    if not done.reconciles:
        raise typer.Exit(1)


def _print_import(done: FolderImport, store: DataStore) -> None:
    rows = [
        (
            name,
            row.batch.input_records,
            row.batch.observations.height,
            row.batch.quarantine.height,
            row.batch.field_issues.height,
        )
        for name, row in done.results.items()
    ]
    console.print(_summary(rows, f"exports from {done.folder}"))
    for name in done.results:
        files = len(done.plan.for_source(name))
        console.print(f"  {name}: {files} file{'s' if files != 1 else ''} imported")
    for skipped in done.plan.skipped:
        console.print(f"  [yellow]skipped:[/] {skipped.path}: {skipped.reason}")
    _print_quarantine(done.batches, store)
    _print_field_issues(done.batches)
    for batch in done.batches:
        for note in batch.notes[:10]:
            console.print(f"  note: {note}")


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
    from ingest.connectors.base import SourceError
    from ingest.landing import DataStore
    from services.syncs import SyncRequestError, check_request

    settings = get_settings()
    first, last = _parse_days(start, end)
    try:
        check_request(source, first, last)
    except SyncRequestError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    store = DataStore(settings.data_path)
    try:
        report = _sync(settings, store, source, first, last, full)
    except SourceError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    _print_report(report, store)
    if load:
        _publish(settings, store)
    if not report.reconciles:
        raise typer.Exit(1)


def _parse_days(start: str, end: str) -> tuple[date, date]:
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        console.print(f"[red]error:[/] dates must be YYYY-MM-DD ({exc})")
        raise typer.Exit(2) from exc
    if last < first:
        console.print(f"[red]error:[/] --end {last} is before --start {first}")
        raise typer.Exit(2)
    return first, last


def _sync(
    settings: Settings, store: DataStore, source: str, first: date, last: date, full: bool
) -> SyncReport:
    """`services.syncs.sync_range` with the cursors in Redis and a progress bar."""
    from infra.redis_keys import RedisKeys
    from infra.redis_store import open_redis
    from ingest.connectors.cursors import CursorStore
    from services.syncs import sync_range

    client = open_redis(settings)
    cursors = CursorStore(client, RedisKeys(settings.redis_key_prefix))
    try:
        with _progress() as progress:
            task = progress.add_task(f"{source}: listing events", total=None)

            def tick(label: str, done: int, total: int) -> None:
                progress.update(task, description=label, completed=done, total=total)

            return sync_range(
                source, settings, store, cursors, first, last, full=full, progress=tick
            )
    finally:
        client.close()


def _print_report(report: SyncReport, store: DataStore) -> None:
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
    _print_quarantine([fetched], store)
    _print_field_issues([fetched])
    http = ", ".join(f"{key} {value}" for key, value in report.stats.items())
    console.print(
        f"events fetched {report.events_fetched}, skipped as final {report.events_skipped}; "
        f"http: {http}"
    )
    for item in report.incomplete:
        console.print(
            f"  [yellow]warning:[/] {item.event_id} ({item.day}) incomplete: {item.reason}; "
            "its stored guests are kept and it is fetched again next run"
        )
    for note in (report.notes + fetched.notes)[:10]:
        console.print(f"  note: {note}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_fakes(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Starts `python -m fakes serve` in the background unless something already answers."""
    ports = (settings.fake_luma_port, settings.fake_eventbrite_port)
    aimed = f":{ports[0]}/" in settings.luma_base_url or f":{ports[1]}/" in (
        settings.eventbrite_base_url
    )
    if not settings.fakes_autostart or not aimed:
        return None  # the syncs talk to real platforms; nothing to imitate
    if all(_port_open(part) for part in ports):
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
    while not all(_port_open(part) for part in ports):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            console.print(f"[red]error:[/] the platform fakes did not start on ports {ports}")
            raise typer.Exit(1)
        time.sleep(0.2)
    console.print(
        f"platform fakes: Luma on :{ports[0]}, Eventbrite on :{ports[1]} (pid {proc.pid})"
    )
    return proc
