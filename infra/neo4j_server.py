"""Starts a real Neo4j Community server as a plain JVM process (no Docker, no package).

Neo4j's jars are resolved from Maven Central into the cache folder; data, logs and
configuration live in a home folder under the state folder. This is runtime plumbing,
not only a developer tool: backup verification (`infra.backup.verify_backup`) starts a
throwaway server here to restore every backup into, in production as in tests. The
developer launchers (`devtools.services`) use the same class for the local and test
server. A server that already answers at the configured address is used as is and
never stopped by `down`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable

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


class Neo4jLocal:
    """The Neo4j server: jars in the cache folder, data and logs in the state folder."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.lib_dir = settings.cache_path / "neo4j" / settings.neo4j_version / "lib"
        self.home = settings.state_path / "neo4j"
        self.conf_dir = self.home / "conf"
        self.logs_dir = self.home / "logs"
        self.pid_file = self.home / "run" / "neo4j.pid"
        self.host, self.port = host_port(settings.neo4j_uri, 7687)

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
            managed = pid_alive(self.pid_file) is not None
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
        proc = self._launch(log)
        return self._wait_until_ready(proc, timeout)

    def _launch(self, log: Log) -> subprocess.Popen[bytes]:
        """The server JVM in its own session, its console appended to logs/console.log."""
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
        return proc

    def _wait_until_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> ServiceStatus:
        """Until Bolt answers; a server that exits or does not answer in time is reported
        with its log tail (and stopped)."""
        console = self.logs_dir / "console.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"Neo4j exited with code {proc.returncode}. Log tail:\n{log_tail(console)}"
                    f"\n{log_tail(self.logs_dir / 'debug.log', 20)}"
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
        stop_pid(self.pid_file)
        raise ServiceError(
            f"Neo4j was not ready after {timeout:.0f}s. Log tail:\n{log_tail(console)}"
        )

    def down(self) -> bool:
        return stop_pid(self.pid_file, timeout=60.0)

    def status(self) -> ServiceStatus:
        state, version, detail = self.probe()
        managed = pid_alive(self.pid_file) is not None
        return ServiceStatus("neo4j", state, managed, version, self.s.neo4j_uri, detail)
