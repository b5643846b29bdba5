"""Encryption in transit: how clients reach Neo4j and Redis over TLS, and self-signed
certificates for the local servers.

TLS is chosen by the address, as the drivers define it: `neo4j+s://` / `bolt+s://` and
`rediss://`. A private CA (self-signed, or a company CA) is trusted through `TLS_CA_FILE`;
without it the system's CAs are used, as for Aura or a managed Redis.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.settings import Settings

SECURE_NEO4J = ("neo4j+s", "bolt+s")


def neo4j_tls(uri: str) -> bool:
    return urlparse(uri).scheme in (*SECURE_NEO4J, "neo4j+ssc", "bolt+ssc")


def neo4j_connection(settings: Settings, uri: str | None = None) -> tuple[str, dict[str, Any]]:
    """The URI and driver options. The driver takes a custom CA only with the plain
    schemes, so `+s` with `TLS_CA_FILE` becomes the plain scheme, encrypted, trusting it."""
    uri = uri or settings.neo4j_uri
    parsed = urlparse(uri)
    if parsed.scheme in SECURE_NEO4J and settings.tls_ca_file:
        from neo4j import TrustCustomCAs

        plain = parsed._replace(scheme=parsed.scheme.removesuffix("+s")).geturl()
        return plain, {
            "encrypted": True,
            "trusted_certificates": TrustCustomCAs(str(settings.path(Path(settings.tls_ca_file)))),
        }
    return uri, {}


def redis_options(settings: Settings) -> dict[str, Any]:
    """Extra `redis.from_url` options for `rediss://` (certificate checked, host name too)."""
    if urlparse(settings.redis_url).scheme != "rediss":
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if settings.tls_ca_file:
        options["ssl_ca_certs"] = str(settings.path(Path(settings.tls_ca_file)))
    return options


CA_COMMON_NAME = "community-platform local CA"


def _valid_for(
    builder: x509.CertificateBuilder, now: dt.datetime, days: int
) -> x509.CertificateBuilder:
    """Backdated five minutes so a peer whose clock is slightly behind still accepts it."""
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(
        now + dt.timedelta(days=days)
    )


def _ca_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, now: dt.datetime, days: int
) -> x509.Certificate:
    """Self-signed CA that may sign server certificates only (path length 0)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
    )
    return (
        _valid_for(builder, now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    """IP addresses as IP entries, everything else as DNS names: clients check each kind."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _server_certificate(
    server_key: ec.EllipticCurvePrivateKey,
    hosts: list[str],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    now: dt.datetime,
    days: int,
) -> x509.Certificate:
    """Leaf certificate for `hosts`, signed by the CA, usable only to serve TLS."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
    )
    return (
        _valid_for(builder, now, days)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_pem_files(
    folder: Path,
    ca: x509.Certificate,
    cert: x509.Certificate,
    server_key: ec.EllipticCurvePrivateKey,
) -> dict[str, Path]:
    """The three PEM files servers expect; only the owner may read the key."""
    paths = {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    paths["key"].unlink(missing_ok=True)
    # Created owner-only, so the key is never readable by others, not even for a moment.
    descriptor = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_pem)
    return paths


def write_self_signed(folder: Path, hosts: list[str], days: int = 825) -> dict[str, Path]:
    """A private CA and a server certificate for `hosts` (names or IP addresses), as PEM
    files: ca.crt, server.crt, server.key (mode 0600). For local servers and tests."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    ca = _ca_certificate(ca_key, ca_name, now, days)
    server_key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(server_key, hosts, ca_key, ca_name, now, days)
    return _write_pem_files(folder, ca, cert, server_key)
