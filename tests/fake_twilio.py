"""A fake Twilio Messages API on loopback, for the test suite and the benchmark.

It speaks just enough of Twilio's REST API for the official `twilio` client:
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic auth,
answering Twilio-shaped JSON (201 with a queued message, or an error body with
Twilio's `code`, `message`, `more_info` and `status`), and `GET` on the same
URL listing the account's messages. Messages it accepts are
recorded, so a test reads the code "from the phone" with `last_code_for()`.

Failures are set per destination number or for every message: a Twilio error
code, a bare HTTP status (500, 503), a hang (no answer until the fake stops) or
an abruptly closed connection. A latency delays each answer without blocking
other requests (one thread per connection).

Standard library only, so the benchmark can run it without Django:

    python -m tests.fake_twilio --port 8765 --latency 0.15 --account ACxxx:token
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import signal
import socket
import struct
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
DEFAULT_FROM_NUMBER = "+15005550006"

API_VERSION = "2010-04-01"
MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CODE_IN_BODY = re.compile(r"(?<!\d)(\d{4,10})(?!\d)")

# Twilio error codes the fake knows: (HTTP status, message as Twilio words it).
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "Invalid 'To' Phone Number"),
    21408: (400, "Permission to send an SMS has not been enabled for the region"),
    21602: (400, "Message body is required."),
    21603: (400, "The source 'From' phone number is required to send an SMS"),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable number"),
    21608: (400, "The number is unverified. Trial accounts cannot send to unverified numbers"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
}


@dataclass(frozen=True)
class FakeMessage:
    """A message the fake accepted, as Twilio would have queued it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    messaging_service_sid: str
    body: str = field(repr=False)
    status_callback: str
    auth_username: str
    date_created: datetime

    @property
    def phone(self) -> str:
        """The destination without the channel prefix (`whatsapp:+1…` → `+1…`)."""
        return _phone_of(self.to)


@dataclass(frozen=True)
class FakeRequest:
    """Any request that reached the fake, answered or not."""

    method: str
    path: str
    form: dict[str, str] = field(repr=False)
    auth_username: str
    client_port: int = 0  # the connection it came on
    proxied_for: str = ""  # the host it was for, when it came as to a proxy


@dataclass(frozen=True)
class DeliveryReport:
    """What Twilio POSTs to a message's StatusCallback, signed with the account's token."""

    url: str
    form: dict[str, str]
    signature: str  # the X-Twilio-Signature header

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Twilio-Signature": self.signature}


@dataclass(frozen=True)
class Failure:
    """How the fake answers a message instead of accepting it."""

    kind: str  # "error" (Twilio JSON error), "hang" or "close"
    status: int = 0
    code: int | None = None
    message: str = ""


class FakeTwilio:
    """A real HTTP server on loopback speaking Twilio's Messages API.

    Use as a context manager (`with FakeTwilio() as fake: ...`) or call
    `start()` and `stop()`. `accounts` maps account SIDs to auth tokens.
    """

    def __init__(
        self,
        *,
        accounts: dict[str, str] | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.accounts = dict(accounts or {DEFAULT_ACCOUNT_SID: DEFAULT_AUTH_TOKEN})
        self.latency = latency
        self.verbose = verbose
        self._address = (host, port)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[FakeMessage] = []
        self._requests: list[FakeRequest] = []
        self._failures: dict[str | None, Failure] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- Life cycle -------------------------------------------------------------

    def start(self) -> FakeTwilio:
        handler = type("BoundHandler", (_Handler,), {"fake": self})
        server = _Server(self._address, handler)
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and delayed requests are released first."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_idle_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to give the twilio client (TWILIO_API_BASE_URL)."""
        return f"http://{self._address[0]}:{self.port}"

    # --- Failure modes ------------------------------------------------------------

    def fail_with_error(
        self, code: int, *, to: str | None = None, status: int | None = None
    ) -> None:
        """Answer Twilio error `code` (with its usual HTTP status) for `to`, or for all."""
        default_status, message = TWILIO_ERRORS.get(code, (400, "Error"))
        self._set_failure(to, Failure("error", status or default_status, code, message))

    def fail_with_status(self, status: int, *, to: str | None = None) -> None:
        """Answer a server error such as 500 or 503, with Twilio's 20500/20503 body."""
        code = {500: 20500, 503: 20503}.get(status, status)
        message = TWILIO_ERRORS.get(code, (status, "Error"))[1]
        self._set_failure(to, Failure("error", status, code, message))

    def hang(self, *, to: str | None = None) -> None:
        """Read the request and never answer (until the fake stops)."""
        self._set_failure(to, Failure("hang"))

    def close_connection(self, *, to: str | None = None) -> None:
        """Read the request and reset the connection without a word."""
        self._set_failure(to, Failure("close"))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def _set_failure(self, to: str | None, failure: Failure) -> None:
        with self._lock:
            self._failures[_phone_of(to) if to else None] = failure

    def failure_for(self, to: str) -> Failure | None:
        with self._lock:
            return self._failures.get(_phone_of(to), self._failures.get(None))

    # --- What the fake saw ------------------------------------------------------

    @property
    def messages(self) -> list[FakeMessage]:
        """Messages accepted, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[FakeRequest]:
        """Every message sent to the fake (POST), failed ones included (a copy)."""
        with self._lock:
            return list(self._requests)

    def messages_to(self, phone: str) -> list[FakeMessage]:
        """Messages accepted for `phone` (E.164, with or without `whatsapp:`)."""
        wanted = _phone_of(phone)
        return [m for m in self.messages if m.phone == wanted]

    def last_code_for(self, phone: str) -> str:
        """The code in the latest message to `phone`, as the person reads it."""
        messages = self.messages_to(phone)
        if not messages:
            raise LookupError(f"no message was sent to {phone}")
        found = CODE_IN_BODY.search(messages[-1].body)
        if found is None:
            raise LookupError(f"the last message to {phone} holds no code")
        return found.group(1)

    def delivery_report(
        self, message: FakeMessage, status: str = "delivered", *, error_code: int | None = None
    ) -> DeliveryReport:
        """The status callback Twilio would send for `message`; `post_delivery_report` sends it."""
        form = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        token = self.accounts[message.account_sid]
        url = message.status_callback
        return DeliveryReport(url, form, twilio_signature(token, url, form))

    def post_delivery_report(self, report: DeliveryReport) -> int:
        """POST a delivery report to its URL (a live server); return the HTTP status."""
        request = Request(report.url, data=urlencode(report.form).encode(), headers=report.headers)
        try:
            with urlopen(request, timeout=10) as response:
                return response.status
        except HTTPError as exc:
            return exc.code

    def reset(self) -> None:
        """Forget messages, requests and failures."""
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self._failures.clear()

    def wait_for_requests(self, count: int, *, timeout: float = 10.0) -> bool:
        """Block until `count` message requests have arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)

    def _record_request(self, request: FakeRequest) -> None:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()

    def _record_message(self, message: FakeMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def _wait(self, seconds: float | None) -> None:
        """Sleep without blocking other requests; wake early when the fake stops."""
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    # A benchmark opens many connections at once; the default backlog of 5 would
    # make the kernel drop SYNs and add a second of retransmit delay.
    request_queue_size = 256
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_idle_connections(self) -> None:
        # Keep-alive handler threads block reading the next request; shutting
        # their sockets down wakes them so server_close() can join them.
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTwilio
    # HTTP/1.1 so the twilio client (requests) keeps connections alive, as with Twilio.
    protocol_version = "HTTP/1.1"
    server_version = "FakeTwilio/1"
    # Headers and body leave in one segment (the buffer is flushed after each
    # request); two small writes would meet the client's delayed ACK and add 40 ms.
    wbufsize = -1
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        form = self._read_form()
        username, password = self._basic_auth()
        path, proxied_for = _origin_form(self.path)
        self.fake._record_request(
            FakeRequest("POST", path, form, username, self.client_address[1], proxied_for)
        )
        if self.fake.latency > 0:
            self.fake._wait(self.fake.latency)

        matched = MESSAGES_PATH.match(path.split("?", 1)[0])
        if matched is None:
            self._send_error(20404, 404, "The requested resource was not found")
            return
        account = matched.group("account")
        if not self._authenticated(account, username, password):
            self._send_error(
                20003, 401, "Authenticate", detail="Your AccountSid or AuthToken was incorrect."
            )
            return

        failure = self.fake.failure_for(form.get("To", ""))
        if failure is not None:
            self._fail(failure)
            return
        error = _validation_error(form)
        if error is not None:
            status, message = TWILIO_ERRORS[error]
            self._send_error(error, status, message)
            return
        self._accept(account, username, form)

    def do_GET(self) -> None:
        # The message list (newest first, optionally `?To=`), so a person trying the
        # standalone fake by hand can read the code as Twilio's console shows it.
        path, _, query = self.path.partition("?")
        matched = MESSAGES_PATH.match(path)
        if matched is None:
            self._send_error(20404, 404, "The requested resource was not found")
            return
        account = matched.group("account")
        if not self._authenticated(account, *self._basic_auth()):
            self._send_error(
                20003, 401, "Authenticate", detail="Your AccountSid or AuthToken was incorrect."
            )
            return
        to = {name: values[-1] for name, values in parse_qs(query).items()}.get("To")
        messages = [
            _message_json(m)
            for m in reversed(self.fake.messages)
            if m.account_sid == account and (to is None or m.to == to)
        ]
        self._send_json(
            200,
            {
                "messages": messages,
                "page": 0,
                "page_size": len(messages),
                "uri": self.path,
                "first_page_uri": self.path,
                "next_page_uri": None,
                "previous_page_uri": None,
            },
        )

    # --- Answers ----------------------------------------------------------------

    def _accept(self, account: str, username: str, form: dict[str, str]) -> None:
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        service = form.get("MessagingServiceSid", "")
        message = FakeMessage(
            sid=sid,
            account_sid=account,
            to=form["To"],
            from_=form.get("From", ""),
            messaging_service_sid=service,
            body=form["Body"],
            status_callback=form.get("StatusCallback", ""),
            auth_username=username,
            date_created=now,
        )
        self.fake._record_message(message)
        self._send_json(201, _message_json(message))

    def _fail(self, failure: Failure) -> None:
        if failure.kind == "hang":
            self.fake._wait(None)
            self.close_connection = True
        elif failure.kind == "close":
            # SO_LINGER 0: closing sends a RST, like a proxy or load balancer dropping us.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        else:
            assert failure.code is not None
            self._send_error(failure.code, failure.status, failure.message)

    def _send_error(self, code: int, status: int, message: str, *, detail: str = "") -> None:
        body: dict[str, object] = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        if detail:
            body["detail"] = detail
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
        self._send_json(status, body, headers)

    def _send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client gave up (its timeout) before we answered.
            self.close_connection = True

    # --- Parsing ------------------------------------------------------------------

    def _read_form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return {name: values[-1] for name, values in parse_qs(raw).items()}

    def _basic_auth(self) -> tuple[str, str]:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return "", ""
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        username, _, password = decoded.partition(":")
        return username, password

    def _authenticated(self, account: str, username: str, password: str) -> bool:
        # Twilio checks the credentials, and that they own the account in the URL.
        token = self.fake.accounts.get(username)
        return token is not None and token == password and username == account

    def log_message(self, format: str, *args: object) -> None:
        if self.fake.verbose:
            super().log_message(format, *args)


def _origin_form(target: str) -> tuple[str, str]:
    """A request's path, and its host when it was sent as to an HTTP proxy (absolute form).

    So the fake also stands for a proxy with Twilio behind it.
    """
    if target.startswith("http://"):
        parts = urlsplit(target)
        return parts.path + (f"?{parts.query}" if parts.query else ""), parts.netloc
    return target, ""


def _message_json(message: FakeMessage) -> dict[str, object]:
    """A message as Twilio's API shows it."""
    uri = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}.json"
    date = format_datetime(message.date_created)
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": date,
        "date_sent": None,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_ or None,
        "messaging_service_sid": message.messaging_service_sid or None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        # Through a messaging service Twilio answers "accepted" (sender chosen later).
        "status": "accepted" if message.messaging_service_sid else "queued",
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": message.to,
        "uri": uri,
    }


def twilio_signature(auth_token: str, url: str, form: dict[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted form fields, base64."""
    payload = url + "".join(name + form[name] for name in sorted(form))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _validation_error(form: dict[str, str]) -> int | None:
    """The Twilio error code for a malformed message, as Twilio checks it."""
    to = form.get("To", "")
    if not to:
        return 21604
    if not E164.match(_phone_of(to)):
        return 21211
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603
    if not form.get("Body"):
        return 21602
    return None


def _phone_of(address: str) -> str:
    return address.removeprefix("whatsapp:")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Twilio Messages API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SID:TOKEN",
        help="an account the fake accepts (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request line")
    parser.add_argument(
        "--fail",
        metavar="MODE",
        help="fail every message: a Twilio error code (21610), an HTTP status (503), hang or close",
    )
    args = parser.parse_args(argv)

    accounts = dict(item.split(":", 1) for item in args.account) or None
    fake = FakeTwilio(
        accounts=accounts,
        latency=args.latency,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
    )
    if args.fail:
        _set_failure_from_cli(fake, args.fail)
    stop = threading.Event()
    # SIGTERM (the benchmark stopping us) ends the loop like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with fake:
        print(fake.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


def _set_failure_from_cli(fake: FakeTwilio, mode: str) -> None:
    if mode == "hang":
        fake.hang()
    elif mode == "close":
        fake.close_connection()
    elif mode.isdigit() and int(mode) < 600:
        fake.fail_with_status(int(mode))
    elif mode.isdigit():
        fake.fail_with_error(int(mode))
    else:
        raise SystemExit(f"--fail: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
