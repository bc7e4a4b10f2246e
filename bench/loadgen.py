"""The load generator: persistent HTTP/1.1 connections driven by asyncio, standard library only.

Run by `bench.run` as a separate process; reads its job as JSON on standard
input and writes its measurements as JSON on standard output. It shares the
machine's cores with the server, so it stays cheap: one event loop, raw
streams and a minimal response parser instead of an HTTP client library.

Job fields: host, port, connections, targets (`[method, path, body]` each,
used once unless `repeat` is true), headers, expect_status, expect_body (a
substring every good response holds), start_at / measure_at / end_at (wall
clock, shared by all load processes), timeout (per request, seconds).
"""

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    first_start: float | None = None
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


async def client(job: dict[str, Any], requests: Iterator[bytes], tally: Tally) -> None:
    host, port, timeout = job["host"], job["port"], job["timeout"]
    measure_at, end_at = job["measure_at"], job["end_at"]
    expect_status, expect_body = job["expect_status"], job["expect_body"].encode()
    reader = writer = None
    try:
        while time.time() < end_at:
            request = next(requests, None)
            if request is None:
                tally.exhausted = True
                return
            started_wall, started = time.time(), time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                status, body, close = await asyncio.wait_for(read_response(reader), timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.error(f"{type(exc).__name__}: {exc}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            ended_wall = time.time()
            if close:
                writer.close()
                reader = writer = None
            if started_wall < measure_at or ended_wall > end_at:
                continue  # warm-up, or finished after the measurement window
            if tally.first_start is None:
                tally.first_start = started_wall
            tally.last_end = max(tally.last_end, ended_wall)
            if status != expect_status or expect_body not in body:
                tally.error(f"{status} {body[:200]!r}")
                continue
            tally.latencies_ms.append(elapsed_ms)
    finally:
        if writer is not None:
            writer.close()


async def run(job: dict[str, Any]) -> Tally:
    host = f"{job['host']}:{job['port']}"
    headers = job.get("headers", {})
    prepared = [build_request(m, p, b, host, headers) for m, p, b in job["targets"]]
    requests = cycle(prepared) if job.get("repeat") else iter(prepared)
    tally = Tally()
    delay = job["start_at"] - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    await asyncio.gather(*(client(job, requests, tally) for _ in range(job["connections"])))
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
            "first_start": tally.first_start,
            "last_end": tally.last_end,
            "cpu_s": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
