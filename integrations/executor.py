"""Renders an API definition with a conversation's attributes and sends it safely.

Safety rules (the Developer Section contract):

- placeholders are filled per context: percent-encoded in the URL's path and
  query, JSON-encoded in JSON bodies, form-encoded in form bodies, and refused
  in headers when they would add a line; they never change scheme, host or port;
- the host is resolved once, every address must be public unless the host is in
  INTEGRATIONS_ALLOWED_PRIVATE_HOSTS, and the socket connects to exactly those
  checked addresses (a second, rebinding DNS answer is never asked for), while
  TLS still verifies the certificate for the host name;
- timeouts always, a 1 MiB cap on the body, no redirects, and retries only when
  asked for and only for idempotent methods;
- every run writes an ApiCallLog row with secrets masked and codes redacted.
"""

import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from .connections import release_database_connection
from .crypto import is_unreadable, mask_secret
from .models import PLACEHOLDER_RE, ApiCallLog, ApiDefinition, ApiRow, validate_api_url
from .redaction import redact_data, redact_text

CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 30
MAX_RESPONSE_BYTES = 1024 * 1024
EXCERPT_CHARS = 2000
USER_AGENT = "chatbot-auth"
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

# Error codes of CallOutcome.error_code.
INVALID_REQUEST = "invalid_request"
ADDRESS_NOT_ALLOWED = "address_not_allowed"
CONNECTION_FAILED = "connection_failed"
TIMEOUT = "timeout"
TLS_ERROR = "tls_error"
HTTP_ERROR = "http_error"
REDIRECT_NOT_FOLLOWED = "redirect_not_followed"
RESPONSE_TOO_LARGE = "response_too_large"
INVALID_JSON = "invalid_json"
SECRET_UNREADABLE = "secret_unreadable"


@dataclass(frozen=True)
class CallOutcome:
    """What one run of an API definition gave.

    `saved` holds the response mappings' values (attribute name → value); they
    are filled from a JSON body whatever the status, so a flow can branch on an
    error's own fields. `log_id` is the ApiCallLog row of the run.
    """

    ok: bool  # a 2xx answer and no transport or parse error
    status: int | None
    body: Any  # parsed JSON, or a text excerpt
    saved: dict[str, Any]
    error_code: str  # "" when ok
    duration_ms: int
    log_id: int | None = None


class CallError(Exception):
    """A run that could not produce a usable answer; `code` is the outcome's error_code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass
class RenderedRequest:
    """A request ready to send, and the same request as it may be shown (secrets masked)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    display_url: str
    display_headers: dict[str, str]
    display_body: str
    secrets: list[str] = field(default_factory=list)

    def excerpt(self) -> str:
        lines = [f"{self.method} {self.display_url}"]
        lines += [f"{name}: {value}" for name, value in self.display_headers.items()]
        if self.display_body:
            lines += ["", self.display_body]
        return redact_text("\n".join(lines), self.secrets)[:EXCERPT_CHARS]


# --- Rendering ----------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render(template: str, attributes: Mapping[str, Any], encode: Callable[[str], str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: encode(_as_text(attributes.get(m.group(1)))), template)


def _percent_encode(value: str) -> str:
    # Everything but unreserved characters, `/` included: a value stays one
    # path segment or one query value.
    return quote(value, safe="", errors="replace")


def _rows(rows: Iterable[ApiRow]) -> list[ApiRow]:
    listed = list(rows)
    if any(row.is_secret and is_unreadable(row.secret_value) for row in listed):
        # FIELD_ENCRYPTION_KEYS lost the key the secret was stored under.
        # Sending the request without it would fail in a less clear way, or
        # worse, succeed unauthenticated.
        raise CallError(
            SECRET_UNREADABLE,
            "A secret of this definition cannot be decrypted with the configured keys: "
            "re-enter it, or add the old key back to FIELD_ENCRYPTION_KEYS.",
        )
    # A row with nothing configured is not sent: optional secrets stay blank.
    return [row for row in listed if row.key and row.configured_value]


def _row_value(row: ApiRow, attributes: Mapping[str, Any]) -> tuple[str, str]:
    """(value to send, value to show) of a text row; secrets are sent verbatim."""
    if row.is_secret:
        return row.secret_value, mask_secret(row.secret_value)
    text = _render(row.value, attributes, str)
    return text, text


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _render_url(
    definition: ApiDefinition, query_rows: list[ApiRow], attributes: Mapping[str, Any]
) -> tuple[str, str]:
    template = definition.url.strip()
    try:
        validate_api_url(template, check_attributes=False)
    except ValidationError as exc:
        raise CallError(INVALID_REQUEST, "The URL is not valid: " + " ".join(exc.messages)) from exc
    parts = urlsplit(template)
    # Only the path and the query are rendered; scheme and netloc are copied.
    path = _render(parts.path, attributes, _percent_encode) or "/"
    query = _render(parts.query, attributes, _percent_encode)
    send_pairs, show_pairs = [], []
    for row in query_rows:
        value, shown = _row_value(row, attributes)
        send_pairs.append((row.key, value))
        show_pairs.append((row.key, shown))
    send_query = "&".join(q for q in (query, urlencode(send_pairs, errors="replace")) if q)
    show_query = "&".join(
        q for q in (query, urlencode(show_pairs, safe="•", errors="replace")) if q
    )
    url = urlunsplit((parts.scheme, parts.netloc, path, send_query, ""))
    # Belt and braces: whatever a value held, the request goes where the
    # definition says.
    if _origin(url) != _origin(template):
        raise CallError(INVALID_REQUEST, "A placeholder value would change the URL's host.")
    return url, urlunsplit((parts.scheme, parts.netloc, path, show_query, ""))


def _json_value(row: ApiRow, attributes: Mapping[str, Any]) -> tuple[Any, Any]:
    if row.is_secret:
        return row.secret_value, mask_secret(row.secret_value)
    whole = PLACEHOLDER_RE.fullmatch(row.value.strip())
    if whole:
        # A value that is one placeholder keeps the attribute's JSON type.
        value = attributes.get(whole.group(1))
        return value, value
    text = _render(row.value, attributes, str)
    return text, text


def render_request(definition: ApiDefinition, attributes: Mapping[str, Any]) -> RenderedRequest:
    """The definition filled with `attributes`; raises CallError(invalid_request)."""
    query_rows = _rows(definition.query_params.all())
    header_rows = _rows(definition.headers.all())
    body_rows = _rows(definition.body_params.all())
    secrets = [row.secret_value for row in [*query_rows, *header_rows, *body_rows] if row.is_secret]
    url, display_url = _render_url(definition, query_rows, attributes)

    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    display_headers = dict(headers)
    for row in header_rows:
        value, shown = _row_value(row, attributes)
        if any(ch in value for ch in "\r\n\0"):
            raise CallError(
                INVALID_REQUEST, f'The value of header "{row.key}" would contain a line break.'
            )
        try:
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            # HTTP/1.1 header values are Latin-1 on the wire.
            raise CallError(
                INVALID_REQUEST,
                f'The value of header "{row.key}" has characters HTTP cannot carry.',
            ) from exc
        headers[row.key] = value
        display_headers[row.key] = shown

    body: bytes | None = None
    display_body = ""
    if body_rows:
        if definition.body_format == ApiDefinition.BodyFormat.FORM:
            pairs = [(row.key, _row_value(row, attributes)) for row in body_rows]
            body = urlencode([(key, value) for key, (value, _) in pairs], errors="replace").encode()
            display_body = urlencode(
                [(key, shown) for key, (_, shown) in pairs], safe="•", errors="replace"
            )
            content_type = "application/x-www-form-urlencoded"
        else:
            values = {row.key: _json_value(row, attributes) for row in body_rows}
            body = json.dumps({key: value for key, (value, _) in values.items()}).encode()
            display_body = json.dumps(
                {key: shown for key, (_, shown) in values.items()}, ensure_ascii=False
            )
            content_type = "application/json"
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = display_headers["Content-Type"] = content_type
    return RenderedRequest(
        method=definition.method,
        url=url,
        headers=headers,
        body=body,
        display_url=display_url,
        display_headers=display_headers,
        display_body=display_body,
        secrets=secrets,
    )


# --- Sending ------------------------------------------------------------------------


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends reach the embedded IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour
        if address in NAT64_PREFIX:
            # A NAT64 gateway forwards to the IPv4 address in the last 32 bits.
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if address.teredo is not None:
            return False
    return address.is_global and not address.is_multicast


def _is_allowlisted(host: str) -> bool:
    allowed = {h.strip().lower().rstrip(".") for h in settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS}
    return host.lower().rstrip(".") in allowed


Address = tuple[int, tuple[Any, ...]]


def resolve_allowed_addresses(host: str, port: int) -> list[Address]:
    """Resolve `host` once; every address must be public unless the host is allowlisted."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise CallError(CONNECTION_FAILED, f"The host {host} could not be resolved.") from exc
    allowlisted = _is_allowlisted(host)
    addresses: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not allowlisted and not is_public_address(address):
            # One private answer refuses the host: connecting to "the public
            # one" would still let DNS choose where we go.
            raise CallError(
                ADDRESS_NOT_ALLOWED,
                f"{host} resolves to {address}, which is not a public address. "
                "Add the host to INTEGRATIONS_ALLOWED_PRIVATE_HOSTS to allow it.",
            )
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise CallError(CONNECTION_FAILED, f"The host {host} has no address.")
    return addresses


class _PinnedConnectionMixin:
    """Connects to the addresses checked beforehand, never resolving the host again."""

    pinned: Sequence[Address] = ()
    timeout: Any
    port: int

    def _new_conn(self) -> socket.socket:
        error: Exception = NewConnectionError(self, "No address to connect to.")  # type: ignore[arg-type]
        for family, sockaddr in self.pinned:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr[:2] if family == socket.AF_INET else sockaddr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except TimeoutError as exc:
                sock.close()
                error = ConnectTimeoutError(self, f"Connecting timed out: {exc}")
            except OSError as exc:
                sock.close()
                error = NewConnectionError(self, f"Failed to connect: {exc}")  # type: ignore[arg-type]
        raise error


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


def _pool(scheme: str, host: str, port: int, addresses: Sequence[Address], timeout: Any) -> Any:
    if scheme == "https":
        pool: Any = HTTPSConnectionPool(
            host,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        pool.ConnectionCls = type("Pinned", (_PinnedHTTPSConnection,), {"pinned": addresses})
    else:
        pool = HTTPConnectionPool(host, port, timeout=timeout, retries=False, maxsize=1)
        pool.ConnectionCls = type("Pinned", (_PinnedHTTPConnection,), {"pinned": addresses})
    return pool


@dataclass
class _Response:
    status: int
    headers: Mapping[str, str]
    content: bytes


def _read_capped(response: Any, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise CallError(RESPONSE_TOO_LARGE, "The response is larger than 1 MiB.")
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CallError(TIMEOUT, "The response did not arrive in time.")
        # A server dripping bytes must not stretch the call past its timeout.
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(remaining)
        chunk = response.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise CallError(RESPONSE_TOO_LARGE, "The response is larger than 1 MiB.")
        chunks.append(chunk)


def _send_once(
    rendered: RenderedRequest, addresses: Sequence[Address], deadline: float
) -> _Response:
    parts = urlsplit(rendered.url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CallError(TIMEOUT, "No time was left for another attempt.")
    timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_SECONDS, remaining), read=remaining)
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    pool = _pool(scheme, host, port, addresses, timeout)
    try:
        response = pool.urlopen(
            rendered.method,
            target,
            body=rendered.body,
            headers={"Accept-Encoding": "identity", **rendered.headers},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            content = _read_capped(response, deadline)
        finally:
            response.release_conn()
        return _Response(response.status, response.headers, content)
    except SSLError as exc:
        raise CallError(TLS_ERROR, f"TLS failed: {_reason(exc)}") from exc
    except NewConnectionError as exc:
        # Checked before timeouts: urllib3 makes it a subclass of ConnectTimeoutError.
        raise CallError(CONNECTION_FAILED, f"The connection failed: {_reason(exc)}") from exc
    except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as exc:
        raise CallError(TIMEOUT, "The server did not answer in time.") from exc
    except (ProtocolError, HTTPError, OSError) as exc:
        raise CallError(CONNECTION_FAILED, f"The connection failed: {_reason(exc)}") from exc
    finally:
        pool.close()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1][:300] if ": " in text else text[:300]


def send_request(
    rendered: RenderedRequest, *, timeout: float, retries: int, idempotent: bool
) -> _Response:
    """Send with the SSRF checks and limits; retries only for idempotent methods.

    No pooled database connection is held meanwhile.
    """
    release_database_connection()
    parts = urlsplit(rendered.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    deadline = time.monotonic() + timeout
    addresses = resolve_allowed_addresses(host, port)
    attempts = 1 + (min(retries, 2) if idempotent else 0)
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        try:
            response = _send_once(rendered, addresses, deadline)
        except CallError as exc:
            if exc.code == CONNECTION_FAILED and not last:
                continue
            raise
        if response.status == 503 and not last:
            continue
        return response
    raise AssertionError("unreachable")  # pragma: no cover


# --- Reading the answer ---------------------------------------------------------------


def extract_path(data: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted JSON path such as `data.items.0.id`."""
    current = data
    for segment in path.split("."):
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return False, None
    return True, current


def _parse_body(response: _Response, needs_json: bool) -> tuple[Any, str, str]:
    """(body, error_code, message): JSON when it is JSON, else a text excerpt."""
    text = response.content.decode("utf-8", errors="replace")
    content_type = response.headers.get("Content-Type", "").lower()
    declared_json = "json" in content_type
    if declared_json or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text), "", ""
        except ValueError:
            if declared_json or needs_json:
                return text[:EXCERPT_CHARS], INVALID_JSON, "The response is not valid JSON."
    if needs_json:
        return text[:EXCERPT_CHARS], INVALID_JSON, "The response is not JSON."
    return text[:EXCERPT_CHARS], "", ""


def _saved_values(definition: ApiDefinition, status: int | None, body: Any) -> dict[str, Any]:
    saved: dict[str, Any] = {}
    for mapping in definition.response_mappings.select_related("attribute"):
        if mapping.source == mapping.Source.STATUS:
            if status is not None:
                saved[mapping.attribute.name] = status
            continue
        if isinstance(body, dict | list):
            found, value = extract_path(body, mapping.path)
            if found:
                saved[mapping.attribute.name] = value
    return saved


def excerpt_of(body: Any, secrets: Sequence[str] = ()) -> str:
    """The body as it may be stored or shown: pretty, redacted, truncated."""
    if isinstance(body, dict | list):
        text = json.dumps(redact_data(body, secrets), indent=2, ensure_ascii=False)
    else:
        text = redact_text(_as_text(body), secrets)
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "\n… (truncated)"
    return text


# --- The one entry point ----------------------------------------------------------------


def call_api(
    definition: ApiDefinition,
    attributes: Mapping[str, Any],
    *,
    origin: str,
    conversation_id: str = "",
) -> CallOutcome:
    """Render `definition` with `attributes`, send it, and log the run.

    Never raises for anything the remote side or the definition's content can
    cause: the outcome's `error_code` says what went wrong. `origin` is an
    ApiCallLog.Origin value ("admin_test" or "conversation").
    """
    if origin not in ApiCallLog.Origin.values:
        raise ValueError(f"Unknown origin {origin!r}.")
    started = time.monotonic()
    timeout = min(max(definition.timeout or DEFAULT_TIMEOUT_SECONDS, 1), MAX_TIMEOUT_SECONDS)
    rendered: RenderedRequest | None = None
    status: int | None = None
    body: Any = None
    error_code, message = "", ""
    secrets: list[str] = []
    try:
        rendered = render_request(definition, attributes)
        secrets = rendered.secrets
        response = send_request(
            rendered,
            timeout=timeout,
            retries=definition.retries,
            idempotent=definition.method in ApiDefinition.IDEMPOTENT_METHODS,
        )
        status = response.status
        needs_json = definition.response_mappings.filter(source="json").exists()
        body, error_code, message = _parse_body(response, needs_json)
        if not error_code and 300 <= status < 400:
            error_code = REDIRECT_NOT_FOLLOWED
            message = f"The server redirected (HTTP {status}); redirects are not followed."
        elif not error_code and not 200 <= status < 300:
            error_code, message = HTTP_ERROR, f"The server answered HTTP {status}."
    except CallError as exc:
        error_code, message = exc.code, exc.message
    # Mapped fields are saved whatever the status (a 4xx body says why), but
    # only from a body that parsed as JSON.
    saved = _saved_values(definition, status, body if error_code != INVALID_JSON else None)
    duration_ms = int((time.monotonic() - started) * 1000)

    log = ApiCallLog.objects.create(
        definition=definition,
        definition_name=definition.name,
        origin=origin,
        conversation_id=conversation_id,
        method=definition.method,
        url=redact_text(rendered.display_url if rendered else definition.url, secrets)[:2000],
        status=status,
        duration_ms=duration_ms,
        outcome=ApiCallLog.Outcome.ERROR if error_code else ApiCallLog.Outcome.SUCCESS,
        error_code=error_code,
        error_message=redact_text(message, secrets),
        request_excerpt=rendered.excerpt() if rendered else "",
        response_excerpt=excerpt_of(body, secrets) if body is not None else "",
    )
    return CallOutcome(
        ok=not error_code,
        status=status,
        body=body,
        saved=saved,
        error_code=error_code,
        duration_ms=duration_ms,
        log_id=log.pk,
    )
