"""`community`: the project's command line (services, demo, tests, imports)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.imports import import_command, start_fakes, sync_command
from cli.ops import (
    backup_command,
    migrate_command,
    new_key_command,
    restore_command,
    rotate_keys_command,
    tls_cert_command,
)
from devtools.services import PostgresLocal, RedisLocal
from infra.neo4j_server import Neo4jLocal
from infra.processes import ServiceError, ServiceStatus
from infra.settings import PROJECT_ROOT, TEST_PROFILE_ENV, Settings, get_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

app = typer.Typer(
    help="Community platform: local services, demo, tests and imports.", no_args_is_help=True
)
services = typer.Typer(
    help="Start, stop and inspect the local Neo4j, Redis and PostgreSQL servers.",
    no_args_is_help=True,
)
app.add_typer(services, name="services")
services.command("tls-cert")(tls_cert_command)
app.command("import")(import_command)
app.command("sync")(sync_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("rotate-keys")(rotate_keys_command)
app.command("migrate")(migrate_command)
app.command("new-key")(new_key_command)
console = Console()


def _print_status(rows: list[ServiceStatus]) -> None:
    table = Table("service", "state", "started here", "version", "address")
    for s in rows:
        colour = "green" if s.state == "up" else "red"
        table.add_row(
            s.name,
            f"[{colour}]{s.state}[/]",
            "yes" if s.managed else "no",
            s.version or "-",
            s.address,
        )
    console.print(table)


def services_up(settings: Settings) -> None:
    try:
        started = time.perf_counter()
        neo = Neo4jLocal(settings).up(log=console.print)
        red = RedisLocal(settings).up(log=console.print)
        pg = PostgresLocal(settings).up(log=console.print)
    except ServiceError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    _print_status([neo, red, pg])
    console.print(f"services ready in {time.perf_counter() - started:.1f}s")


@services.command("up")
def up() -> None:
    """Start Neo4j and Redis (or use the ones already answering) and wait until ready."""
    services_up(get_settings())


@services.command("down")
def down() -> None:
    """Stop only the servers that `up` started."""
    settings = get_settings()
    for name, svc in (
        ("neo4j", Neo4jLocal(settings)),
        ("redis", RedisLocal(settings)),
        ("postgres", PostgresLocal(settings)),
    ):
        console.print(f"{name}: {'stopped' if svc.down() else 'not started here; left alone'}")


@services.command("status")
def status() -> None:
    """Show each service's state and version."""
    settings = get_settings()
    rows = [
        Neo4jLocal(settings).status(),
        RedisLocal(settings).status(),
        PostgresLocal(settings).status(),
    ]
    _print_status(rows)
    if any(r.state != "up" for r in rows):
        raise typer.Exit(1)


def dagster_env(settings: Settings) -> dict[str, str]:
    home = settings.state_path / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "DAGSTER_HOME": str(home)}


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


_CONSOLE_INFO: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _run_job(
    instance: DagsterInstance,
    job: str,
    tags: dict[str, str],
    run_config: dict[str, Any] | None = None,
) -> None:
    """One run of a code-location job, launched from this process on the demo's instance.

    Running them here rather than through `dagster job execute` loads the code location
    once for the whole demo instead of once per run.
    """
    import dagster as dg

    recon = dg.build_reconstructable_job(
        "orchestration.definitions",
        "job_for_run",
        reconstructable_args=(job,),
        reconstructor_working_directory=str(PROJECT_ROOT),
    )
    started = time.perf_counter()
    # The terminal gets each step's summary (INFO) and anything worse; Dagster's own
    # step events (DEBUG) stay in the run's event log, in the UI.
    config = {**(run_config or {}), **_CONSOLE_INFO}
    result = dg.execute_job(
        recon, instance=instance, tags=tags, run_config=config, raise_on_error=False
    )
    if not result.success:
        console.print(f"[red]materialization failed[/] ({job}, run {result.run_id})")
        raise typer.Exit(1)
    console.print(f"{job}: run {result.run_id} succeeded in {time.perf_counter() - started:.1f}s")


def snapshot_months(settings: Settings, today: date | None = None) -> list[str]:
    """Monthly partitions from the first import month to the current month."""
    first = max(
        date.fromisoformat(settings.imports_start_date),
        date.fromisoformat(settings.analytics_partitions_start),
    ).replace(day=1)
    last = (today or datetime.now(UTC).date()).replace(day=1)
    months = []
    while first <= last:
        months.append(first.isoformat())
        first = (first + timedelta(days=32)).replace(day=1)
    return months


def materialize_all(settings: Settings) -> None:
    import dagster as dg

    from orchestration.definitions import refresh_tags
    from orchestration.executors import RUN_IN_PROCESS

    os.environ["DAGSTER_HOME"] = dagster_env(settings)["DAGSTER_HOME"]
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        console.rule("materializing every asset")
        # The daily API partitions from the first import day to the look-ahead, in one run.
        # The samples are a small run: its steps run in this process, not one process each
        # (on a busy 2-core machine starting those cost more than the steps' work).
        _run_job(instance, "refresh_all", refresh_tags(settings), RUN_IN_PROCESS)
        # Monthly snapshots in order: each is compared with the month before it.
        for month in snapshot_months(settings):
            console.rule(f"analytics snapshot {month[:7]}")
            _run_job(instance, "analytics_snapshots", {"dagster/partition": month})
    console.print(f"materialized in {time.perf_counter() - started:.1f}s")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def demo(
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="After materializing, keep the Dagster UI and API running."
    ),
) -> None:
    """Start services, materialize every asset on the sample data, then serve the UI and API."""
    settings = get_settings()
    services_up(settings)
    _migrate_local_stores(settings)
    fakes = start_fakes(settings)  # the Luma and Eventbrite APIs the demo imports from
    try:
        materialize_all(settings)
    except BaseException:
        if fakes is not None:
            os.killpg(fakes.pid, signal.SIGTERM)
        raise
    if not serve:
        if fakes is not None:
            os.killpg(fakes.pid, signal.SIGTERM)
            fakes.wait(timeout=30)
        console.print("[green]done[/]: every asset materialized.")
        return
    env = dagster_env(settings)
    env.setdefault("AUTH_MODE", "dev")
    procs = [
        subprocess.Popen(
            [
                _bin("dagster"),
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                settings.dagster_host,
                "-p",
                str(settings.dagster_port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
        ),
        subprocess.Popen(
            [
                _bin("uvicorn"),
                "api.app:create_app",
                "--factory",
                "--host",
                settings.api_host,
                "--port",
                str(settings.api_port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
        ),
    ]
    console.print(f"Dagster UI: http://{settings.dagster_host}:{settings.dagster_port}")
    console.print(
        f"API:        http://{settings.api_host}:{settings.api_port}  (docs at /docs, health at /health)"
    )
    console.print("Token for the API: `.venv/bin/community dev-token --role organizer`")
    console.print("Ctrl-C stops both; `community services down` stops Neo4j and Redis.")
    if fakes is not None:
        procs.append(fakes)
    # SIGTERM (e.g. from `timeout` or a supervisor) stops the children like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


def _migrate_local_stores(settings: Settings) -> None:
    """The demo's own stores follow the checkout: a graph and Redis left by an older
    release are migrated forward, as `community migrate` would, instead of refused."""
    from infra.migrations import migrate_graph, migrate_redis
    from infra.neo4j_store import GraphStore
    from infra.redis_store import FigureStore

    graph = GraphStore.from_settings(settings)
    figures = FigureStore.from_settings(settings)
    try:
        done = migrate_graph(graph.driver, graph.database, None)
        done += [f"redis {step}" for step in migrate_redis(figures.r, figures.keys, None)]
    finally:
        graph.close()
        figures.r.close()
    if done:
        console.print(f"migrated the local stores: {', '.join(done)}")


@app.command("dev-token")
def dev_token(
    role: str = typer.Option("organizer", help="viewer, organizer or admin"),
    user: str = typer.Option("user_local", help="The token's subject (user id)."),
    ttl: int = typer.Option(3600 * 8, help="Lifetime in seconds."),
) -> None:
    """Print a bearer token for an API running with AUTH_MODE=dev (the demo's default)."""
    from api.auth import ROLE_ORDER, mint_dev_token

    if role not in ROLE_ORDER:
        console.print(f"[red]unknown role {role!r}[/]; choose one of {', '.join(ROLE_ORDER)}")
        raise typer.Exit(2)
    print(mint_dev_token(get_settings(), user, role, ttl))


@app.command("bench")
def bench(
    quick: bool = typer.Option(False, "--quick", help="Small inputs: a smoke run in minutes."),
    only: list[str] = typer.Option([], "--only", help="Run only these benchmark modules."),
) -> None:
    """Run every benchmark under bench/ (services must be up for those that use them)."""
    from bench import report

    bench_dir = PROJECT_ROOT / "bench"
    names = sorted(
        p.stem for p in bench_dir.glob("*.py") if not p.stem.startswith("_") and p.stem != "report"
    )
    figures_file = bench_dir / "out" / "figures.jsonl"
    figures_file.parent.mkdir(parents=True, exist_ok=True)
    figures_file.unlink(missing_ok=True)
    env = {**os.environ, report.ENV: str(figures_file)}
    failed = []
    ran = []
    for name in names:
        if only and name not in only:
            continue
        console.rule(f"bench.{name}")
        ran.append(name)
        cmd = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])]
        if subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=False).returncode != 0:
            failed.append(name)
    out = report.write(bench_dir / "RESULTS.md", report.load(figures_file), ran, failed, quick)
    console.print(f"report: {out}")
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
        raise typer.Exit(1)


@app.command("materialize")
def materialize() -> None:
    """Materialize every asset once against the running services."""
    materialize_all(get_settings())


@app.command("test", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Start test-profile services (own ports and folders), lint, type-check and run pytest."""
    os.environ.update(TEST_PROFILE_ENV)
    settings = get_settings()
    started = time.perf_counter()
    services_up(settings)
    steps = [
        ("ruff", [_bin("ruff"), "check", "."]),
        ("mypy", [_bin("mypy")]),
        ("import layering", [_bin("lint-imports")]),
        ("dead code", [_bin("vulture")]),
        ("pytest", [_bin("pytest"), *ctx.args]),
    ]
    for name, cmd in steps:
        console.rule(name)
        code = subprocess.run(cmd, cwd=PROJECT_ROOT, env=os.environ.copy(), check=False).returncode
        if code != 0:
            console.print(f"[red]{name} failed[/] (exit {code})")
            raise typer.Exit(code)
    console.print(f"[green]all checks passed[/] in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    app()
