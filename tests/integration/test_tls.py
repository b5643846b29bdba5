"""Encryption in transit against the real servers, started with self-signed certificates:
Neo4j over `bolt+s://`, Redis over `rediss://`; plain connections are refused."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import redis

from devtools.services import RedisLocal
from infra.neo4j_server import Neo4jLocal
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore, open_redis
from infra.settings import Settings
from infra.tls import write_self_signed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_neo4j_and_redis_over_tls(services: Settings, tmp_path: Path) -> None:
    certs = write_self_signed(tmp_path / "tls", ["127.0.0.1", "localhost"])
    port = services.backup_verify_neo4j_uri.rsplit(":", 1)[-1]
    redis_port = _free_port()
    tls = services.model_copy(
        update={
            "neo4j_uri": f"bolt+s://127.0.0.1:{port}",
            "redis_url": f"rediss://127.0.0.1:{redis_port}/0",
            "neo4j_heap": "512m",
            "neo4j_pagecache": "64m",
            "state_dir": tmp_path / "state",
            "tls_ca_file": str(certs["ca"]),
            "tls_cert_file": str(certs["cert"]),
            "tls_key_file": str(certs["key"]),
        }
    )
    neo, red = Neo4jLocal(tls), RedisLocal(tls)
    neo.up(log=lambda _: None)
    red.up(log=lambda _: None)
    try:
        graph = GraphStore.from_settings(tls)
        try:
            graph.run("CREATE (:Probe {v: 1})")
            assert graph.run("MATCH (p:Probe) RETURN p.v AS v") == [{"v": 1}]
            info = graph.driver.get_server_info()
            assert info.address.port == int(port)
        finally:
            graph.close()
        # Plain Bolt is refused, and so is TLS without trusting the private CA.
        for refused in (
            tls.model_copy(update={"neo4j_uri": f"bolt://127.0.0.1:{port}"}),
            tls.model_copy(update={"tls_ca_file": None}),
        ):
            state, _, detail = Neo4jLocal(refused).probe(timeout=3.0)
            assert state == "down", detail

        figures = FigureStore.from_settings(tls)
        figures.put_event_guest_counts({"e": 2})
        assert figures.event_guest_counts() == {"e": 2}
        assert figures.r.connection_pool.connection_class.__name__ == "SSLConnection"
        figures.r.close()
        for refused_url in (f"redis://127.0.0.1:{redis_port}/0",):
            client = open_redis(tls.model_copy(update={"redis_url": refused_url}))
            with pytest.raises(redis.ConnectionError):
                client.ping()
            client.close()
        untrusted = open_redis(tls.model_copy(update={"tls_ca_file": None}))
        with pytest.raises(redis.ConnectionError):
            untrusted.ping()
        untrusted.close()
    finally:
        neo.down()
        red.down()
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
