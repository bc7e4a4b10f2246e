"""Real HTTP(S) servers on loopback and an API-definition builder, for Developer Section tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from integrations.models import (
    ApiBodyParam,
    ApiDefinition,
    ApiHeader,
    ApiQueryParam,
    ApiResponseMapping,
    CustomAttribute,
)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Loopback:
    """An HTTP server on 127.0.0.1 answering by path; it records every request."""

    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    scheme: str = "http"

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _handler(state: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any, **headers: str) -> None:
            self._answer(status, json.dumps(data).encode(), "application/json", **headers)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(
                self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
            )
            state.requests.append(recorded)
            state.hits[parts.path] = state.hits.get(parts.path, 0) + 1
            path = parts.path
            if path == "/json":
                self._json(200, {"data": {"items": [{"id": "item-1"}], "ok": True}})
            elif path == "/echo" or path.startswith("/echo/"):
                self._json(
                    200,
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body.decode(),
                    },
                )
            elif path == "/error":
                self._json(
                    400, {"success": False, "code": "invalid_phone_number", "message": "bad"}
                )
            elif path == "/flaky":
                # 503 twice, then 200.
                if state.hits[path] <= 2:
                    self._json(503, {"detail": "busy"})
                else:
                    self._json(200, {"attempt": state.hits[path]})
            elif path == "/unavailable":
                self._json(503, {"detail": "busy"})
            elif path == "/redirect":
                self._answer(302, b"", "text/plain", Location=state.url("/json"))
            elif path == "/text":
                self._answer(200, b"plain words", "text/plain")
            elif path == "/badjson":
                self._answer(200, b"{not json", "application/json")
            elif path == "/huge":
                self._answer(200, b"[" + b"1," * (2_500_000) + b"1]", "application/json")
            elif path == "/huge-chunked":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for _ in range(80):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
            elif path == "/code":
                self._json(200, {"message": "Your code is 482913.", "otp": "482913"})
            else:
                self._json(404, {"detail": "no such path"})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The executor drops connections on purpose (a body over its cap, a
        # timeout): a reset here is part of the test, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve(tls_context: ssl.SSLContext | None = None) -> Iterator[Loopback]:
    state = Loopback(scheme="https" if tls_context else "http")
    server = _Server(("127.0.0.1", 0), _handler(state))
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def self_signed_context() -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as pem:
        pem.write(cert.public_bytes(serialization.Encoding.PEM))
        pem.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem.name)
    return context


def attribute(name: str, type: str = "text") -> CustomAttribute:
    return CustomAttribute.objects.get_or_create(name=name, defaults={"type": type})[0]


def definition(
    url: str,
    *,
    name: str = "Test API",
    method: str = "POST",
    body_format: str = "json",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: dict[str, str] | None = None,
    secret_headers: dict[str, str] | None = None,
    secret_body: dict[str, str] | None = None,
    secret_query: dict[str, str] | None = None,
    mappings: dict[str, str] | None = None,
    timeout: int = 10,
    retries: int = 0,
) -> ApiDefinition:
    """An API definition with its rows; `mappings` is JSON path (or "status") → attribute."""
    api = ApiDefinition.objects.create(
        name=name,
        method=method,
        url=url,
        body_format=body_format,
        timeout=timeout,
        retries=retries,
    )
    for model, plain, secret in [
        (ApiQueryParam, query, secret_query),
        (ApiHeader, headers, secret_headers),
        (ApiBodyParam, body, secret_body),
    ]:
        for key, value in (plain or {}).items():
            model.objects.create(definition=api, key=key, value=value)
        for key, value in (secret or {}).items():
            model.objects.create(definition=api, key=key, is_secret=True, secret_value=value)
    for path, target in (mappings or {}).items():
        source = "status" if path == "status" else "json"
        ApiResponseMapping.objects.create(
            definition=api,
            source=source,
            path="" if source == "status" else path,
            attribute=attribute(target),
        )
    return api
