"""Local Redis and PostgreSQL servers for development and the test suite, without Docker.

Redis is Debian's `redis-server`, PostgreSQL Debian's `postgresql` run as a plain process
with its own data folder; `community services up|down|status` drives them together with
Neo4j (`infra.neo4j_server`, which lives in infra/ because backups start one too). A
server that already answers at the configured address is used as is and never stopped
by `down`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis

from infra.processes import (
    Log,
    ServiceError,
    ServiceStatus,
    host_port,
    log_tail,
    pid_alive,
    stop_pid,
)
from infra.settings import Settings

INSTALL_REDIS = "apt-get install -y redis-server"


class RedisLocal:
    """Debian's redis-server, daemonized with its pid file in the state folder."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.home = settings.state_path / "redis"
        self.pid_file = self.home / "redis.pid"
        self.host, self.port = host_port(settings.redis_url, 6379)

    def probe(self) -> tuple[str, str | None, str]:
        try:
            from infra.tls import redis_options

            client = redis.Redis.from_url(
                self.s.redis_url,
                socket_connect_timeout=2,
                socket_timeout=2,
                **redis_options(self.s),
            )
            info = client.info("server")
            client.close()
            return "up", str(info.get("redis_version")), ""
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            return "down", None, str(exc)
        except redis.AuthenticationError as exc:
            return "auth-failed", None, str(exc)

    def ensure_binary(self, log: Log = print) -> str:
        found = shutil.which("redis-server")
        if found:
            return found
        if os.geteuid() != 0:
            raise ServiceError(f"redis-server is missing. Install it with: sudo {INSTALL_REDIS}")
        log("Installing Debian's redis-server …")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        res = subprocess.run(
            INSTALL_REDIS.split(), env=env, capture_output=True, text=True, check=False
        )
        if res.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            res = subprocess.run(
                INSTALL_REDIS.split(), env=env, capture_output=True, text=True, check=False
            )
        found = shutil.which("redis-server")
        if not found:
            raise ServiceError(
                f"Installing redis-server failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
            )
        return found

    def up(self, log: Log = print, timeout: float = 30.0) -> ServiceStatus:
        state, version, detail = self.probe()
        if state == "up":
            managed = pid_alive(self.pid_file) is not None
            log(f"Redis {version} already answers at {self.s.redis_url}; using it.")
            return ServiceStatus("redis", "up", managed, version, self.s.redis_url)
        if state == "auth-failed":
            raise ServiceError(f"Redis at {self.s.redis_url} refuses the credentials: {detail}")
        binary = self.ensure_binary(log)
        self.home.mkdir(parents=True, exist_ok=True)
        logfile = self.home / "redis.log"
        cmd = [
            binary,
            "--bind",
            self.host,
            *self._port_args(),
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pid_file),
            "--dir",
            str(self.home),
            "--logfile",
            str(logfile),
            "--save",
            "300 10",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ServiceError(f"redis-server failed to start:\n{res.stderr}\n{log_tail(logfile)}")
        log(f"Starting Redis on {self.host}:{self.port} …")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, version, _ = self.probe()
            if state == "up":
                return ServiceStatus("redis", "up", True, version, self.s.redis_url)
            time.sleep(0.2)
        raise ServiceError(
            f"Redis was not ready after {timeout:.0f}s. Log tail:\n{log_tail(logfile)}"
        )

    def _port_args(self) -> list[str]:
        """Plain port, or with `rediss://` a TLS port only (plain connections refused)."""
        if urlparse(self.s.redis_url).scheme != "rediss":
            return ["--port", str(self.port)]
        if not (self.s.tls_cert_file and self.s.tls_key_file):
            raise ServiceError(
                f"{self.s.redis_url} asks for TLS: set TLS_CERT_FILE and TLS_KEY_FILE "
                "(`community services tls-cert` writes a self-signed pair)"
            )
        return [
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(self.s.path(Path(self.s.tls_cert_file))),
            "--tls-key-file",
            str(self.s.path(Path(self.s.tls_key_file))),
            "--tls-auth-clients",
            "no",
        ]

    def down(self) -> bool:
        return stop_pid(self.pid_file)

    def status(self) -> ServiceStatus:
        state, version, detail = self.probe()
        return ServiceStatus(
            "redis", state, pid_alive(self.pid_file) is not None, version, self.s.redis_url, detail
        )


# --------------------------------------------------------------------------- PostgreSQL


INSTALL_POSTGRES = "apt-get install -y postgresql"


class PostgresLocal:
    """Debian's PostgreSQL as a plain process with its own data folder (the Dagster
    instance's run, event and schedule storage). PostgreSQL refuses to run as root, so
    under root the server runs as the `postgres` system user the package creates."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.home = settings.state_path / "postgres"
        self.server_dir = self._server_dir()
        self.data = self.server_dir / "data"
        self.pid_file = self.home / "postgres.pid"
        self.logfile = self.home / "postgres.log"

    def _server_dir(self) -> Path:
        """The folder the server itself writes (data, socket). Under root the server runs
        as `postgres`, which must reach it: a checkout under a private folder (/root) gets
        one under /var/lib/postgresql instead, named after the checkout's state folder."""
        if os.geteuid() != 0:
            return self.home
        path = self.home.resolve()
        for parent in path.parents:
            if parent.exists() and not parent.stat().st_mode & 0o001:
                digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
                return Path("/var/lib/postgresql/community") / digest
        return self.home

    def _connect(self, dbname: str, timeout: int = 2) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.s.postgres_host,
            port=self.s.postgres_port,
            user=self.s.postgres_user,
            password=self.s.postgres_password.get_secret_value(),
            dbname=dbname,
            connect_timeout=timeout,
        )

    def probe(self) -> tuple[str, str | None, str]:
        import psycopg2

        try:
            conn = self._connect(self.s.postgres_db)
        except psycopg2.OperationalError as exc:
            text = str(exc)
            if "authentication failed" in text or "password" in text:
                return "auth-failed", None, text.strip()
            if "does not exist" in text:
                return "no-database", None, text.strip()
            return "down", None, text.strip()
        try:
            version = str(conn.server_version // 10000)
        finally:
            conn.close()
        return "up", version, ""

    def bin_dir(self) -> Path:
        if self.s.postgres_bin_dir:
            return Path(self.s.postgres_bin_dir)
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if found:
            return found[-1].parent
        which = shutil.which("initdb")
        if which:
            return Path(which).resolve().parent
        raise ServiceError(
            f"PostgreSQL is missing. Install it with: sudo {INSTALL_POSTGRES} "
            "(scripts/bootstrap.sh does this when run as root)"
        )

    def _as_owner(self) -> dict[str, Any]:
        """Run server commands as `postgres` when we are root."""
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": "postgres"}

    def _chown(self) -> None:
        if os.geteuid() == 0:
            for path in [self.server_dir, *self.server_dir.rglob("*")]:
                shutil.chown(path, "postgres", "postgres")

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.server_dir.mkdir(parents=True, exist_ok=True)
        (self.server_dir / "run").mkdir(exist_ok=True)
        pwfile = self.server_dir / "pwfile"
        pwfile.write_text(self.s.postgres_password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        self._chown()
        try:
            res = subprocess.run(
                [
                    str(self.bin_dir() / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.s.postgres_user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                check=False,
                **self._as_owner(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise ServiceError(f"initdb failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")

    @property
    def address(self) -> str:
        return f"postgresql://{self.s.postgres_host}:{self.s.postgres_port}/{self.s.postgres_db}"

    def up(self, log: Log = print, timeout: float = 60.0) -> ServiceStatus:
        address = self.address
        state, version, detail = self.probe()
        if state == "up":
            managed = pid_alive(self.pid_file) is not None
            log(f"PostgreSQL {version} already answers at {address}; using it.")
            return ServiceStatus("postgres", "up", managed, version, address)
        if state == "auth-failed":
            raise ServiceError(f"PostgreSQL at {address} refuses the credentials: {detail}")
        if state == "down" and pid_alive(self.pid_file) is not None:
            state, version, detail = self._wait_for_running(timeout)
        if state == "down":
            state, version, detail = self._start(log, timeout)
        if state == "no-database":
            self._create_database()
            state, version, detail = self.probe()
        if state != "up":
            raise ServiceError(f"PostgreSQL is {state} at {address}: {detail}")
        return ServiceStatus(
            "postgres", "up", pid_alive(self.pid_file) is not None, version, address
        )

    def _wait_for_running(self, timeout: float) -> tuple[str, str | None, str]:
        """Our server is running but slow to answer (a loaded machine): wait for it rather
        than start a second one on the same data folder."""
        state, version, detail = self.probe()
        deadline = time.monotonic() + timeout
        while state == "down" and time.monotonic() < deadline:
            time.sleep(0.5)
            state, version, detail = self.probe()
        if state == "down":
            raise ServiceError(f"PostgreSQL (pid file {self.pid_file}) does not answer: {detail}")
        return state, version, detail

    def _start(self, log: Log, timeout: float) -> tuple[str, str | None, str]:
        """Starts the server and waits until it answers (its database may not exist yet)."""
        self.init()
        self.home.mkdir(parents=True, exist_ok=True)
        self._chown()
        cmd = [
            str(self.bin_dir() / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.s.postgres_port),
            "-c",
            f"listen_addresses={self.s.postgres_host}",
            "-c",
            f"unix_socket_directories={self.server_dir / 'run'}",
            "-c",
            "max_connections=100",
            "-c",
            "shared_buffers=32MB",
            "-c",
            "log_rotation_size=10MB",
        ]
        with self.logfile.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as_owner(),
            )
        self.pid_file.write_text(str(proc.pid))
        log(
            f"Starting PostgreSQL (pid {proc.pid}) on {self.s.postgres_host}:{self.s.postgres_port} …"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"PostgreSQL exited with code {proc.returncode}. Log tail:\n{log_tail(self.logfile)}"
                )
            state, version, detail = self.probe()
            if state in ("up", "no-database"):
                return state, version, detail
            time.sleep(0.3)
        self.down()
        raise ServiceError(
            f"PostgreSQL was not ready after {timeout:.0f}s:\n{log_tail(self.logfile)}"
        )

    def _create_database(self) -> None:
        conn = self._connect("postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.s.postgres_db}"')
        finally:
            conn.close()

    def down(self, timeout: float = 30.0) -> bool:
        """Fast shutdown (SIGINT): open sessions are ended, nothing committed is lost."""
        pid = pid_alive(self.pid_file)
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(self.pid_file) is not None:
            time.sleep(0.2)
        if pid_alive(self.pid_file) is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> ServiceStatus:
        state, version, detail = self.probe()
        return ServiceStatus(
            "postgres", state, pid_alive(self.pid_file) is not None, version, self.address, detail
        )
