"""The load generator: persistent HTTP/1.1 connections driven by asyncio, standard library only.

Run by `bench.run` as a separate process; reads its job as JSON on standard
input and writes its measurements as JSON on standard output. It shares the
machine's cores with the server, so it stays cheap: one event loop, raw
streams and a minimal response parser instead of an HTTP client library.

Job fields: host, port, connections, targets (`[method, path, body]` each,
used once unless `repeat` is true), headers, expect_status, expect_body (a
substring every good response holds), start_at / measure_at / end_at (wall
clock, shared by all load processes), timeout (per request, seconds).

With `flow` in the job, each client instead plays whole conversations of the
demo flow, one phone number each: start, send the phone, read the code from
the fake Twilio as the person reads their SMS, send the code. One sample is
one conversation; its latency is the sum of the three calls to the server.
"""

import asyncio
import base64
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any
from urllib.parse import quote

NETWORK_ERRORS = (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError)
CODE = re.compile(r"(?<!\d)(\d{4,10})(?!\d)")


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    last_end: float = 0.0
    exhausted: bool = False

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


def build_request(method: str, path: str, body: str, host: str, headers: dict[str, str]) -> bytes:
    data = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if data or method != "GET":
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one response; return (status, body, whether the server closes the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and "close" in value.lower():
            close = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts), close
    return status, await reader.readexactly(length), close


class Connection:
    """One keep-alive HTTP/1.1 connection, opened again when the server closes it."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(raw)
            # asyncio.timeout, not wait_for: no extra task per request.
            async with asyncio.timeout(self.timeout):
                status, body, close = await read_response(self.reader)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class ReplayProtocol(asyncio.Protocol):
    """One keep-alive connection that sends the next request from the loop's own callback.

    No coroutine per request and no task per timeout: the cheapest way to
    keep a connection busy with asyncio, so the load generator takes little
    of the CPU the server needs. Responses must carry Content-Length (Django's
    CommonMiddleware sets it).
    """

    def __init__(self, job: dict[str, Any], requests: Iterator[bytes], tally: Tally) -> None:
        self.requests, self.tally = requests, tally
        self.measure_at, self.end_at = job["measure_at"], job["end_at"]
        self.expect_status, self.expect_body = job["expect_status"], job["expect_body"].encode()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.started = self.started_wall = 0.0
        self.in_flight = False
        self.finished = False  # no more requests to send: the client is done
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send_next()

    def send_next(self) -> None:
        request = next(self.requests, None) if time.time() < self.end_at else None
        if request is None:
            self.tally.exhausted |= time.time() < self.end_at
            self.finished = True
            self.transport.close()
            return
        self.started_wall, self.started = time.time(), time.perf_counter()
        self.in_flight = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        status_line, *header_lines = self.buffer[:end].decode("latin-1").split("\r\n")
        length, close = -1, False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value.lower():
                close = True
        if length < 0:
            self.fail("a response without Content-Length")
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.in_flight = False
        self.record(int(status_line.split(" ", 2)[1]), body)
        if close:
            self.transport.close()
        else:
            self.send_next()

    def record(self, status: int, body: bytes) -> None:
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        ended_wall = time.time()
        if self.started_wall < self.measure_at or ended_wall > self.end_at:
            return  # warm-up, or finished after the measurement window
        self.tally.last_end = max(self.tally.last_end, ended_wall)
        if status != self.expect_status or self.expect_body not in body:
            self.tally.error(f"{status} {body[:200]!r}")
        else:
            self.tally.latencies_ms.append(elapsed_ms)

    def fail(self, text: str) -> None:
        if self.in_flight and self.started_wall >= self.measure_at:
            self.tally.error(text)
        self.in_flight = False
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.fail(f"connection lost: {exc}")
        if not self.closed.done():
            self.closed.set_result(None)


async def client(job: dict[str, Any], requests: Iterator[bytes], tally: Tally) -> None:
    """Keep one connection busy until the window closes or the targets run out."""
    loop = asyncio.get_running_loop()
    while time.time() < job["end_at"]:
        try:
            _, protocol = await loop.create_connection(
                lambda: ReplayProtocol(job, requests, tally), job["host"], job["port"]
            )
        except OSError as exc:
            if time.time() >= job["measure_at"]:
                tally.error(f"connect: {exc}")
            await asyncio.sleep(0.1)
            continue
        while not protocol.closed.done():
            # A watchdog instead of a timer per request: a hung request is cut off.
            await asyncio.wait([protocol.closed], timeout=1)
            if protocol.in_flight and time.perf_counter() - protocol.started > job["timeout"]:
                protocol.fail("timed out")
        if protocol.finished:
            return


async def flow_client(job: dict[str, Any], phones: Iterator[str], tally: Tally) -> None:
    """Play whole conversations until the window closes or the phone numbers run out."""
    flow = job["flow"]
    host, headers = f"{job['host']}:{job['port']}", job.get("headers", {})
    server = Connection(job["host"], job["port"], job["timeout"])
    twilio = Connection(job["host"], flow["twilio_port"], job["timeout"])
    basic = base64.b64encode(f"{flow['twilio_sid']}:{flow['twilio_token']}".encode()).decode()
    messages_path = f"/2010-04-01/Accounts/{flow['twilio_sid']}/Messages.json"
    measure_at, end_at = job["measure_at"], job["end_at"]

    async def call(path: str, body: dict[str, str], expect: int) -> dict[str, Any]:
        status, answer = await server.request(
            build_request("POST", path, json.dumps(body), host, headers)
        )
        if status != expect:
            raise ValueError(f"POST {path}: {status} {answer[:200]!r}")
        return json.loads(answer)

    async def read_code(phone: str) -> str:
        status, listing = await twilio.request(
            build_request(
                "GET",
                f"{messages_path}?To={quote(phone)}",
                "",
                host,
                {"Authorization": f"Basic {basic}"},
            )
        )
        messages = json.loads(listing).get("messages") if status == 200 else None
        found = CODE.search(messages[0]["body"]) if messages else None
        if found is None:
            raise ValueError(f"no code for the phone in the fake Twilio ({status})")
        return found.group(1)

    try:
        while time.time() < end_at:
            phone = next(phones, None)
            if phone is None:
                tally.exhausted = True
                return
            started_wall = time.time()
            try:
                t0 = time.perf_counter()
                conversation = await call(f"/api/v1/flows/{flow['flow_id']}/conversations", {}, 201)
                path = f"/api/v1/conversations/{conversation['id']}/messages"
                conversation = await call(path, {"text": phone}, 200)
                spent = time.perf_counter() - t0
                if conversation.get("expects") != "code":
                    raise ValueError(f"after the phone: {json.dumps(conversation)[:300]}")
                code = await read_code(phone)  # the person reads the SMS: not server time
                t0 = time.perf_counter()
                conversation = await call(path, {"text": code}, 200)
                spent += time.perf_counter() - t0
            except (*NETWORK_ERRORS, KeyError) as exc:
                if started_wall >= measure_at:
                    tally.error(f"{type(exc).__name__}: {exc}")
                continue
            ended_wall = time.time()
            if started_wall < measure_at or ended_wall > end_at:
                continue
            tally.last_end = max(tally.last_end, ended_wall)
            text = json.dumps(conversation, ensure_ascii=False)
            if conversation.get("status") != "finished" or job["expect_body"] not in text:
                tally.error(f"finished as {text[:300]}")
                continue
            tally.latencies_ms.append(spent * 1000)
    finally:
        server.close()
        twilio.close()


async def run(job: dict[str, Any]) -> Tally:
    tally = Tally()
    if "flow" in job:
        phones = iter(job["flow"]["phones"])
        clients = [flow_client(job, phones, tally) for _ in range(job["connections"])]
    else:
        host, headers = f"{job['host']}:{job['port']}", job.get("headers", {})
        prepared = [build_request(m, p, b, host, headers) for m, p, b in job["targets"]]
        requests = cycle(prepared) if job.get("repeat") else iter(prepared)
        clients = [client(job, requests, tally) for _ in range(job["connections"])]
    delay = job["start_at"] - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    await asyncio.gather(*clients)
    return tally


def main() -> None:
    job = json.load(sys.stdin)
    cpu_before = os.times()
    tally = asyncio.run(run(job))
    cpu_after = os.times()
    json.dump(
        {
            "latencies_ms": tally.latencies_ms,
            "errors": tally.errors,
            "error_samples": tally.error_samples,
            "exhausted": tally.exhausted,
            "last_end": tally.last_end,
            "cpu_s": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
