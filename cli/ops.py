"""Operations commands: backups, restores, key rotation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from infra.settings import get_settings

console = Console()


def backup_command(
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Restore into an empty Neo4j and compare (default)."
    ),
) -> None:
    """Back up the graph, the normalized store and the Redis documents, then verify it."""
    from infra.backup import BackupError, run_backup

    settings = get_settings().model_copy(update={"backup_verify": verify})
    try:
        result = run_backup(settings, log=console.print)
    except BackupError as exc:
        console.print(f"[red]backup failed:[/] {exc}")
        raise typer.Exit(1) from exc
    graph = result["manifest"]["graph"]
    state = "verified" if result["manifest"]["verified"] else "[yellow]not verified[/]"
    console.print(
        f"[green]backup written[/] {result['folder']} ({state}): {graph['nodes']} nodes, "
        f"{graph['relationships']} relationships, {result['manifest']['redis']['keys']} Redis keys"
    )
    if result["pruned"]:
        console.print(f"removed older backups: {', '.join(result['pruned'])}")


def restore_command(
    folder: Path = typer.Argument(None, help="A backup folder; default: the newest verified."),
    force: bool = typer.Option(False, "--force", help="Replace a graph that holds data."),
) -> None:
    """Restore graph, Redis documents and normalized store from a backup."""
    from infra.backup import BackupError, list_backups, read_manifest, restore_backup

    settings = get_settings()
    if folder is None:
        verified = [p for p in list_backups(settings) if read_manifest(p).get("verified")]
        if not verified:
            console.print("[red]no verified backup found[/] in " + str(settings.backup_dir))
            raise typer.Exit(1)
        folder = verified[-1]
    try:
        restore_backup(settings, folder, force=force, log=console.print)
    except BackupError as exc:
        console.print(f"[red]restore failed:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]restored[/] from {folder}")


def tls_cert_command(
    folder: Path = typer.Option(None, help="Where to write; default <STATE_DIR>/tls."),
    host: list[str] = typer.Option(["127.0.0.1", "localhost"], help="Names the cert covers."),
) -> None:
    """Write a private CA and a server certificate for the local servers' TLS."""
    from infra.tls import write_self_signed

    settings = get_settings()
    target = folder or settings.state_path / "tls"
    paths = write_self_signed(target, host)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    console.print(
        f"set TLS_CA_FILE={paths['ca']} TLS_CERT_FILE={paths['cert']} TLS_KEY_FILE={paths['key']}\n"
        "and use NEO4J_URI=bolt+s://… and REDIS_URL=rediss://…"
    )


def rotate_keys_command() -> None:
    """Re-encrypt backups and the raw landing under the newest ENCRYPTION_KEYS key (keep
    old keys listed until this has run, then remove them)."""
    from infra.backup import BackupError, rotate_backups
    from infra.crypto import DecryptionError, RawLanding

    settings = get_settings()
    try:
        count = rotate_backups(settings, log=console.print)
        count += RawLanding(settings.data_path, settings.key_ring()).rotate(log=console.print)
    except (BackupError, DecryptionError) as exc:
        console.print(f"[red]rotation failed:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]re-encrypted[/] {count} files")


def new_key_command() -> None:
    """Print a fresh encryption key for ENCRYPTION_KEYS."""
    from infra.crypto import new_key

    print(new_key())


def migrate_command(
    to: int = typer.Option(None, "--to", help="Target version (lower: roll back)."),
    status: bool = typer.Option(False, "--status", help="Only show the versions."),
) -> None:
    """Apply pending migrations of the graph schema and the Redis documents."""
    from infra.migrations import (
        GRAPH_MIGRATIONS,
        REDIS_MIGRATIONS,
        SchemaMismatchError,
        graph_version,
        latest,
        migrate_graph,
        migrate_redis,
        redis_version,
    )
    from infra.neo4j_store import GraphStore
    from infra.redis_store import FigureStore

    settings = get_settings()
    graph = GraphStore.from_settings(settings)
    figures = FigureStore.from_settings(settings)
    try:
        if status:
            console.print(
                f"graph: {graph_version(graph.driver, graph.database)} "
                f"(this release: {latest(GRAPH_MIGRATIONS)}); redis: "
                f"{redis_version(figures.r, figures.keys)} (this release: {latest(REDIS_MIGRATIONS)})"
            )
            return
        done = migrate_graph(graph.driver, graph.database, to)
        done += [f"redis {x}" for x in migrate_redis(figures.r, figures.keys, to)]
    except SchemaMismatchError as exc:
        console.print(f"[red]migration refused:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        graph.close()
        figures.r.close()
    for line in done or ["nothing to do"]:
        console.print(line)
