"""Starts real Neo4j and Redis servers as local processes, for machines without Docker.

Neo4j Community is resolved from Maven Central into the cache folder and run as a
plain JVM process; Redis is Debian's `redis-server`. A server that already answers
at the configured address is used as is and never stopped by `down`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable

from infra.settings import Settings

Log = Callable[[str], object]

NEO4J_MAIN = "org.neo4j.server.CommunityEntryPoint"
NEO4J_ADMIN = "org.neo4j.server.startup.Neo4jAdminCommand"
JVM_FLAGS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-XX:+UseG1GC",
    "-Dfile.encoding=UTF-8",
]
POM_TEMPLATE = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.community</groupId>
  <artifactId>neo4j-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId><artifactId>neo4j</artifactId><version>{v}</version>
    </dependency>
    <dependency>
      <groupId>org.neo4j.app</groupId><artifactId>neo4j-server</artifactId><version>{v}</version>
    </dependency>
  </dependencies>
</project>
"""


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


def _host_port(uri: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(uri)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def _pid_alive(pid_file: Path) -> int | None:
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


def _stop_pid(pid_file: Path, timeout: float = 30.0) -> bool:
    pid = _pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid_file) is not None:
        time.sleep(0.2)
    if _pid_alive(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no {path.name})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------- Neo4j


class Neo4jLocal:
    """The Neo4j server: jars in the cache folder, data and logs in the state folder."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.lib_dir = settings.cache_path / "neo4j" / settings.neo4j_version / "lib"
        self.home = settings.state_path / "neo4j"
        self.conf_dir = self.home / "conf"
        self.logs_dir = self.home / "logs"
        self.pid_file = self.home / "run" / "neo4j.pid"
        self.host, self.port = _host_port(settings.neo4j_uri, 7687)

    # -- probing
    def probe(self, timeout: float = 3.0) -> tuple[str, str | None, str]:
        """Returns (state, version, detail) for whatever answers at the URI."""
        from infra.tls import neo4j_connection

        auth = (self.s.neo4j_user, self.s.neo4j_password.get_secret_value())
        uri, tls = neo4j_connection(self.s)
        try:
            with GraphDatabase.driver(
                uri,
                **tls,
                auth=auth,
                connection_timeout=timeout,
                max_transaction_retry_time=0,
            ) as driver:
                driver.verify_connectivity()
                records, _, _ = driver.execute_query(
                    "CALL dbms.components() YIELD name, versions, edition "
                    "RETURN versions[0] AS v, edition AS e",
                    database_="system",
                )
                rec = records[0]
                return "up", f"{rec['v']} {rec['e']}", ""
        except AuthError as exc:
            return "auth-failed", None, str(exc)
        except (ServiceUnavailable, OSError) as exc:
            return "down", None, str(exc)

    # -- install
    def java(self) -> str:
        """Finds a Java 17+ runtime; Neo4j 5.26 runs on 17 and 21."""
        candidates = [self.s.neo4j_java_home, os.environ.get("JAVA_HOME")]
        for home in candidates:
            if home and (Path(home) / "bin" / "java").exists():
                return str(Path(home) / "bin" / "java")
        found = shutil.which("java")
        if not found:
            raise ServiceError(
                "No Java runtime found. Install one (as root: apt-get install -y openjdk-17-jre-headless) "
                "or set NEO4J_JAVA_HOME."
            )
        return found

    def java_version(self) -> str:
        out = subprocess.run([self.java(), "-version"], capture_output=True, text=True, check=False)
        first = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else "?"
        return first

    def ensure_jars(self, log: Log = print) -> Path:
        marker = self.lib_dir.parent / ".complete"
        if marker.exists():
            return self.lib_dir
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceError(
                "Maven is needed to fetch Neo4j's jars (as root: apt-get install -y maven)."
            )
        self.lib_dir.parent.mkdir(parents=True, exist_ok=True)
        pom = self.lib_dir.parent / "pom.xml"
        pom.write_text(POM_TEMPLATE.format(v=self.s.neo4j_version))
        log(f"Resolving Neo4j {self.s.neo4j_version} jars from Maven Central into {self.lib_dir} …")
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.lib_dir}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"mvn could not resolve Neo4j {self.s.neo4j_version}:\n{result.stdout[-3000:]}"
                f"\n{result.stderr[-2000:]}"
            )
        marker.write_text(self.s.neo4j_version)
        return self.lib_dir

    def write_config(self) -> None:
        for sub in ("conf", "data", "logs", "run", "plugins", "import"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        conf = {
            "server.directories.data": self.home / "data",
            "server.directories.logs": self.logs_dir,
            "server.directories.run": self.home / "run",
            "server.directories.plugins": self.home / "plugins",
            "server.directories.import": self.home / "import",
            "server.directories.transaction.logs.root": self.home / "data" / "transactions",
            "server.default_listen_address": self.host,
            "server.bolt.listen_address": f"{self.host}:{self.port}",
            "server.bolt.advertised_address": f"{self.host}:{self.port}",
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "server.memory.pagecache.size": self.s.neo4j_pagecache,
            "server.memory.heap.initial_size": self.s.neo4j_heap,
            "server.memory.heap.max_size": self.s.neo4j_heap,
            "dbms.usage_report.enabled": "false",
            # Local data is rebuildable from raw: keep transaction logs small.
            "db.tx_log.rotation.retention_policy": "1 files",
            "db.tx_log.rotation.size": "64M",
            "db.tx_log.preallocate": "false",
        }
        conf.update(self._tls_config())
        text = "".join(f"{k}={v}\n" for k, v in conf.items())
        (self.conf_dir / "neo4j.conf").write_text(text)

    def _tls_config(self) -> dict[str, object]:
        """Bolt over TLS only (plain connections refused) when the URI asks for TLS."""
        from infra.tls import neo4j_tls

        if not neo4j_tls(self.s.neo4j_uri):
            return {}
        if not (self.s.tls_cert_file and self.s.tls_key_file):
            raise ServiceError(
                f"{self.s.neo4j_uri} asks for TLS: set TLS_CERT_FILE and TLS_KEY_FILE "
                "(`community services tls-cert` writes a self-signed pair)"
            )
        certs = self.home / "certificates" / "bolt"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.s.path(Path(self.s.tls_cert_file)), certs / "public.crt")
        shutil.copyfile(self.s.path(Path(self.s.tls_key_file)), certs / "private.key")
        (certs / "private.key").chmod(0o600)
        (certs / "trusted").mkdir(exist_ok=True)
        (certs / "revoked").mkdir(exist_ok=True)
        return {
            "server.bolt.tls_level": "REQUIRED",
            "dbms.ssl.policy.bolt.enabled": "true",
            "dbms.ssl.policy.bolt.base_directory": certs,
            "dbms.ssl.policy.bolt.private_key": "private.key",
            "dbms.ssl.policy.bolt.public_certificate": "public.crt",
            "dbms.ssl.policy.bolt.client_auth": "NONE",
        }

    def _env(self) -> dict[str, str]:
        return {**os.environ, "NEO4J_HOME": str(self.home), "NEO4J_CONF": str(self.conf_dir)}

    def _classpath(self) -> str:
        return f"{self.lib_dir}/*"

    def set_initial_password(self) -> None:
        if (self.home / "data" / "dbms").exists():
            return
        password = self.s.neo4j_password.get_secret_value()
        if len(password) < 8:
            raise ServiceError("NEO4J_PASSWORD must have at least 8 characters.")
        result = subprocess.run(
            [
                self.java(),
                *JVM_FLAGS,
                "-cp",
                self._classpath(),
                NEO4J_ADMIN,
                "dbms",
                "set-initial-password",
                password,
            ],
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"set-initial-password failed:\n{result.stdout}\n{result.stderr}")

    # -- lifecycle
    def up(self, log: Log = print, timeout: float = 180.0) -> ServiceStatus:
        state, version, detail = self.probe()
        if state == "up":
            managed = _pid_alive(self.pid_file) is not None
            log(f"Neo4j {version} already answers at {self.s.neo4j_uri}; using it.")
            return ServiceStatus("neo4j", "up", managed, version, self.s.neo4j_uri)
        if state == "auth-failed":
            raise ServiceError(
                f"A Neo4j server answers at {self.s.neo4j_uri} but refuses the configured "
                f"credentials ({detail}). Set NEO4J_USER/NEO4J_PASSWORD or NEO4J_URI."
            )
        self.ensure_jars(log)
        self.write_config()
        self.set_initial_password()
        console = self.logs_dir / "console.log"
        heap = self.s.neo4j_heap
        cmd = [
            self.java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *JVM_FLAGS,
            "-cp",
            self._classpath(),
            NEO4J_MAIN,
            f"--home-dir={self.home}",
            f"--config-dir={self.conf_dir}",
            "--console-mode",
        ]
        with console.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        log(f"Starting Neo4j {self.s.neo4j_version} (pid {proc.pid}) on {self.host}:{self.port} …")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"Neo4j exited with code {proc.returncode}. Log tail:\n{_tail(console)}"
                    f"\n{_tail(self.logs_dir / 'debug.log', 20)}"
                )
            state, version, detail = self.probe(timeout=2.0)
            if state == "up":
                return ServiceStatus("neo4j", "up", True, version, self.s.neo4j_uri)
            if state == "auth-failed":
                raise ServiceError(
                    f"Neo4j started with other credentials than configured ({detail}). "
                    f"Remove {self.home / 'data'} to reset it."
                )
            time.sleep(1.0)
        _stop_pid(self.pid_file)
        raise ServiceError(f"Neo4j was not ready after {timeout:.0f}s. Log tail:\n{_tail(console)}")

    def down(self) -> bool:
        return _stop_pid(self.pid_file, timeout=60.0)

    def status(self) -> ServiceStatus:
        state, version, detail = self.probe()
        managed = _pid_alive(self.pid_file) is not None
        return ServiceStatus("neo4j", state, managed, version, self.s.neo4j_uri, detail)


# --------------------------------------------------------------------------- Redis


INSTALL_REDIS = "apt-get install -y redis-server"


class RedisLocal:
    """Debian's redis-server, daemonized with its pid file in the state folder."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.home = settings.state_path / "redis"
        self.pid_file = self.home / "redis.pid"
        self.host, self.port = _host_port(settings.redis_url, 6379)

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
            managed = _pid_alive(self.pid_file) is not None
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
            raise ServiceError(f"redis-server failed to start:\n{res.stderr}\n{_tail(logfile)}")
        log(f"Starting Redis on {self.host}:{self.port} …")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, version, _ = self.probe()
            if state == "up":
                return ServiceStatus("redis", "up", True, version, self.s.redis_url)
            time.sleep(0.2)
        raise ServiceError(f"Redis was not ready after {timeout:.0f}s. Log tail:\n{_tail(logfile)}")

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
        return _stop_pid(self.pid_file)

    def status(self) -> ServiceStatus:
        state, version, detail = self.probe()
        return ServiceStatus(
            "redis", state, _pid_alive(self.pid_file) is not None, version, self.s.redis_url, detail
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

    def up(self, log: Log = print, timeout: float = 60.0) -> ServiceStatus:
        address = f"postgresql://{self.s.postgres_host}:{self.s.postgres_port}/{self.s.postgres_db}"
        state, version, detail = self.probe()
        if state == "up":
            managed = _pid_alive(self.pid_file) is not None
            log(f"PostgreSQL {version} already answers at {address}; using it.")
            return ServiceStatus("postgres", "up", managed, version, address)
        if state == "auth-failed":
            raise ServiceError(f"PostgreSQL at {address} refuses the credentials: {detail}")
        if state == "down" and _pid_alive(self.pid_file) is not None:
            # Our server is running but slow to answer (a loaded machine): wait for it
            # rather than start a second one on the same data folder.
            deadline = time.monotonic() + timeout
            while state == "down" and time.monotonic() < deadline:
                time.sleep(0.5)
                state, version, detail = self.probe()
            if state == "down":
                raise ServiceError(
                    f"PostgreSQL (pid file {self.pid_file}) does not answer: {detail}"
                )
        if state == "down":
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
                        f"PostgreSQL exited with code {proc.returncode}. Log tail:\n{_tail(self.logfile)}"
                    )
                state, version, detail = self.probe()
                if state in ("up", "no-database"):
                    break
                time.sleep(0.3)
            else:
                self.down()
                raise ServiceError(
                    f"PostgreSQL was not ready after {timeout:.0f}s:\n{_tail(self.logfile)}"
                )
        if state == "no-database":
            conn = self._connect("postgres")
            conn.autocommit = True
            try:
                with conn.cursor() as cur:
                    cur.execute(f'CREATE DATABASE "{self.s.postgres_db}"')
            finally:
                conn.close()
            state, version, detail = self.probe()
        if state != "up":
            raise ServiceError(f"PostgreSQL is {state} at {address}: {detail}")
        return ServiceStatus(
            "postgres", "up", _pid_alive(self.pid_file) is not None, version, address
        )

    def down(self, timeout: float = 30.0) -> bool:
        """Fast shutdown (SIGINT): open sessions are ended, nothing committed is lost."""
        pid = _pid_alive(self.pid_file)
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(self.pid_file) is not None:
            time.sleep(0.2)
        if _pid_alive(self.pid_file) is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> ServiceStatus:
        state, version, detail = self.probe()
        address = f"postgresql://{self.s.postgres_host}:{self.s.postgres_port}/{self.s.postgres_db}"
        return ServiceStatus(
            "postgres", state, _pid_alive(self.pid_file) is not None, version, address, detail
        )
