"""A stand-in for a Clerk instance: serves its JWKS and issues RS256 session tokens.

Tokens carry Clerk's session claims (`sub`, `sid`, `iss`, `azp`, `exp`, `nbf`, `iat`,
optionally `org_role` and custom claims), signed with a key whose public half is served at
`/.well-known/jwks.json`, like the real frontend API.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class FakeClerk:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = ""
        self.jwks: dict[str, Any] = {"keys": []}
        self.rotate(keep_old=False)
        self.jwks_requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                outer.jwks_requests += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.issuer = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def rotate(self, keep_old: bool = False) -> None:
        """A new signing key, as when an instance rotates keys; the old one is retired
        (or still published with `keep_old`)."""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"ins_{uuid.uuid4().hex[:12]}"
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        self.jwks = {"keys": [jwk, *(self.jwks["keys"] if keep_old else [])]}

    @property
    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    def __enter__(self) -> FakeClerk:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def session_token(
        self,
        user_id: str = "user_2abc",
        *,
        ttl: int = 60,
        azp: str = "http://localhost:5173",
        claims: dict[str, Any] | None = None,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        payload = {
            "sub": user_id,
            "sid": f"sess_{uuid.uuid4().hex[:12]}",
            "iss": self.issuer,
            "azp": azp,
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl,
            **(claims or {}),
        }
        return jwt.encode(
            payload, key or self._key, algorithm="RS256", headers={"kid": kid or self.kid}
        )
