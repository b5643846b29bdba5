"""Server processes this project starts itself: pid files, stopping, log tails, status.

Shared by the Neo4j launcher (`infra.neo4j_server`, which backups also use) and the
developer launchers of Redis and PostgreSQL (`devtools.services`).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

Log = Callable[[str], object]


class ServiceError(RuntimeError):
    """A service could not be brought up; the message says what to look at."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # "up" or "down"
    managed: bool  # started by this project (pid file present and alive)
    version: str | None
    address: str
    detail: str = ""


def host_port(uri: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(uri)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def stop_pid(pid_file: Path, timeout: float = 30.0) -> bool:
    pid = pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid_file) is not None:
        time.sleep(0.2)
    if pid_alive(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no {path.name})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
