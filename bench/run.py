"""`make bench`: start the app under gunicorn, load it from loopback, report req/s and latency.

Scenarios, each measured for BENCH_SECONDS after a warm-up, in BENCH_ROUNDS
rounds (all scenarios in turn, then again), each scenario's figures pooled
over its rounds: a shared machine whose speed drifts during the run then
slows every scenario alike, and the ratios between them hold.

- `bare`: a DRF endpoint with no database work, the stack's ceiling;
- `write_floor`: lock one row by key, update it, insert one event, in one
  transaction: the floor any correct code check sits on;
- `check`: `POST /api/v1/verifications/{id}/check` with the right code, each
  request on its own pending verification;
- `send_floor`: one message through the real twilio client to a fake Twilio
  that answers after BENCH_LATENCY seconds, and nothing else: the ceiling of
  any send on this machine;
- `send`: `POST /api/v1/verifications` to distinct numbers, through the same
  twilio client and fake Twilio;
- `flow`: one whole conversation of the demo flow (phone, Send OTP through
  the Developer Section's API call to this same server, code from the fake
  Twilio, Verify OTP), with BENCH_FLOW_CLIENTS (half of BENCH_CLIENTS)
  concurrent conversations: each message that runs an API call holds one
  server thread while its call needs another.

The database is PostgreSQL when DATABASE_URL is set (a database of its own,
created fresh and dropped afterwards), otherwise a fresh SQLite file; REDIS_URL
makes the cache use Redis. Results go to `bench/results/latest.json` and
`latest.md`. Every process started here is stopped at the end, on errors too.

Environment: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_ROUNDS (3), BENCH_WORKERS (4),
BENCH_THREADS (32), BENCH_CLIENTS (32), BENCH_LATENCY (0.15),
BENCH_LOADGEN_PROCESSES (2), BENCH_SCENARIOS (all), BENCH_POOL_RATE (1500:
targets prepared per second of `write_floor` and `check`), BENCH_FLOW_CLIENTS,
BENCH_DATABASE_POOL_SIZE (8: PostgreSQL connections per worker, the project's
default; 0 for one per thread), BENCH_RESULTS_DIR (bench/results).
"""

import contextlib
import json
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Connections the run needs beside gunicorn's: its own commands, and superusers' reserve.
CONNECTIONS_SPARE = 8
SCENARIOS = ["bare", "write_floor", "check", "send_floor", "send", "flow"]
HOST = "127.0.0.1"
FAKE_TWILIO_SID = "AC" + "b" * 32
FROM_NUMBER = "+15005550006"
# Targets prepared per second of `send`: above what 32 clients can reach
# when every send waits 150 ms for the provider (213 req/s).
SEND_POOL_RATE = 400
FLOW_POOL_RATE = 100

# Project settings that a developer's shell may hold; the bench sets its own.
SETTINGS_PREFIXES = ("OTP_", "SMS_", "TWILIO_", "SECURE_", "SESSION_", "CSRF_", "INTEGRATIONS_")
SETTINGS_NAMES = {
    "ENV_FILE",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_SOCKET_TIMEOUT",
    "FIELD_ENCRYPTION_KEYS",
    "PHONE_DEFAULT_REGION",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "CONN_MAX_AGE",
    "DATABASE_POOL_SIZE",
    "DATABASE_PREPARED_STATEMENTS",
    "DATABASE_SERVER_SIDE_CURSORS",
    "DJANGO_SETTINGS_MODULE",
}


class BenchError(Exception):
    pass


@dataclass
class Config:
    seconds: float
    warmup: float
    rounds: int
    workers: int
    threads: int
    clients: int
    latency: float
    loadgen_processes: int
    pool_rate: int
    flow_clients: int
    database_pool_size: int
    scenarios: list[str]
    database_url: str
    redis_url: str

    @classmethod
    def from_env(cls) -> "Config":
        env = os.environ
        scenarios = [s.strip() for s in env.get("BENCH_SCENARIOS", "").split(",") if s.strip()]
        unknown = set(scenarios) - set(SCENARIOS)
        if unknown:
            raise BenchError(f"Unknown scenarios: {', '.join(sorted(unknown))}.")
        return cls(
            seconds=float(env.get("BENCH_SECONDS", "10")),
            warmup=float(env.get("BENCH_WARMUP", "2")),
            rounds=max(int(env.get("BENCH_ROUNDS", "3")), 1),
            workers=int(env.get("BENCH_WORKERS", "4")),
            threads=int(env.get("BENCH_THREADS", "32")),
            clients=int(env.get("BENCH_CLIENTS", "32")),
            latency=float(env.get("BENCH_LATENCY", "0.15")),
            loadgen_processes=int(env.get("BENCH_LOADGEN_PROCESSES", "2")),
            pool_rate=int(env.get("BENCH_POOL_RATE", "1500")),
            flow_clients=int(env.get("BENCH_FLOW_CLIENTS", "0")),
            database_pool_size=int(env.get("BENCH_DATABASE_POOL_SIZE", "8")),
            scenarios=scenarios or SCENARIOS,
            database_url=env.get("DATABASE_URL", ""),
            redis_url=env.get("REDIS_URL", ""),
        )


@dataclass
class Stack:
    """What the scenarios run against."""

    config: Config
    env: dict[str, str]
    port: int
    workdir: Path
    database: str
    api_key: str = ""
    server_group: int = 0
    twilio_port: int = 0
    twilio_token: str = ""
    skipped: dict[str, str] = field(default_factory=dict)


# --- Processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def background(
    name: str, args: list[str], env: dict[str, str], workdir: Path
) -> Iterator[tuple[Path, int]]:
    """Run `args` in its own process group for the duration of the block.

    Yield its log file and its process group id (its own pid).
    """
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield log, process.pid
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # The group holds gunicorn's workers too; it was created for this process alone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_for_port(port: int, log: Path, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.1)
    raise BenchError(f"Nothing listens on port {port}. Log:\n{tail(log)}")


def wait_for_health(port: int, log: Path, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"http://{HOST}:{port}/healthz"
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"The server did not become healthy. Log:\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def manage(stack_env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- Environment and database -------------------------------------------------------


def base_env(config: Config, workdir: Path, port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS_NAMES and not name.startswith(SETTINGS_PREFIXES)
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "ENV_FILE": "",
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "OTP_PEPPER": secrets.token_urlsafe(32),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "SECURE_SSL_REDIRECT": "False",
            "ALLOWED_HOSTS": HOST,
            "PUBLIC_BASE_URL": f"http://{HOST}:{port}",
            "SMS_DAILY_CAP": str(10**9),
            # One bench bot sends thousands of codes a minute; the count still runs.
            "BOT_SEND_RATE": f"{10**9}/minute",
            "LOG_LEVEL": "WARNING",
            "DATABASE_POOL_SIZE": str(config.database_pool_size),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    if config.redis_url:
        env["REDIS_URL"] = config.redis_url
    return env


@contextlib.contextmanager
def database(config: Config, workdir: Path) -> Iterator[tuple[str, str]]:
    """Yield (DATABASE_URL, description) of a fresh, empty database for this run."""
    if not config.database_url:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}", "SQLite (WAL)"
        return
    import psycopg

    url = urlsplit(config.database_url)
    if url.scheme not in ("postgres", "postgresql", "pgsql"):
        raise BenchError("DATABASE_URL must point at PostgreSQL (or be unset for SQLite).")
    name = url.path.lstrip("/") or "chatbot_auth"
    # A database of its own, dropped and created at each run: never the one
    # DATABASE_URL names unless that one is already a bench database.
    if not name.endswith("bench"):
        name += "_bench"
    server = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        allowed = int(conn.execute("SHOW max_connections").fetchone()[0])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    if config.database_pool_size:
        connections = f"a pool of up to {config.database_pool_size} per worker"
        needed = config.workers * config.database_pool_size
        fewer = "lower BENCH_DATABASE_POOL_SIZE or BENCH_WORKERS"
    else:
        # Each thread that has served a request keeps its connection (CONN_MAX_AGE).
        connections = "one per thread"
        needed = config.workers * config.threads
        fewer = "set BENCH_DATABASE_POOL_SIZE or lower BENCH_THREADS"
    if needed + CONNECTIONS_SPARE > allowed:
        print(
            f"Warning: PostgreSQL allows {allowed} connections, and gunicorn may open "
            f"{needed} ({connections}): requests may fail with 'too many clients'. "
            f"Raise max_connections or {fewer}.",
            flush=True,
        )
    description = (
        f"PostgreSQL {version.split()[0]} (max_connections {allowed}, connections: {connections})"
    )
    try:
        yield urlunsplit(url._replace(path=f"/{name}")), description
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def send_available() -> str:
    """Why `send` cannot run here, or an empty string when it can."""
    if not (ROOT / "tests" / "fake_twilio.py").exists():
        return "no fake Twilio (tests/fake_twilio.py) in this tree"
    if not (ROOT / "integrations" / "twilio.py").exists():
        return "no Twilio SMS backend (integrations/twilio.py) in this tree"
    return ""


# --- Scenarios -------------------------------------------------------------------


def prepare(stack: Stack, what: str, count: int = 0) -> dict[str, Any]:
    out = stack.workdir / f"prepare-{what}.json"
    manage(stack.env, "bench_prepare", what, "--count", str(count), "--out", str(out))
    return json.loads(out.read_text())


def scenario_job(stack: Stack, name: str) -> dict[str, Any] | None:
    """The load generator's job for `name`: targets and what a good answer looks like."""
    config = stack.config
    span = config.warmup + config.seconds
    auth = {"Authorization": f"Api-Key {stack.api_key}"}
    if name == "bare":
        targets = [["GET", "/bench/bare", ""]]
        return {"targets": targets, "repeat": True, "expect_status": 200, "expect_body": "ok"}
    if name == "write_floor":
        targets = prepare(stack, name, math.ceil(config.pool_rate * span))["targets"]
        return {"targets": targets, "expect_status": 200, "expect_body": '"hits":1'}
    if name == "check":
        targets = prepare(stack, name, math.ceil(config.pool_rate * span))["targets"]
        return {
            "targets": targets,
            "headers": auth,
            "expect_status": 200,
            "expect_body": '"verified":true',
        }
    if name == "send_floor":
        targets = [["POST", "/bench/send-floor", ""]]
        return {"targets": targets, "repeat": True, "expect_status": 200, "expect_body": '"sid"'}
    if name == "send":
        targets = prepare(stack, name, math.ceil(SEND_POOL_RATE * span))["targets"]
        return {
            "targets": targets,
            "headers": auth,
            "expect_status": 201,
            "expect_body": '"status":"pending"',
        }
    if name == "flow":
        prepared = prepare(stack, name, math.ceil(FLOW_POOL_RATE * span))
        return {
            "flow": {
                "flow_id": prepared["flow_id"],
                "phones": prepared["phones"],
                "twilio_port": stack.twilio_port,
                "twilio_sid": FAKE_TWILIO_SID,
                "twilio_token": stack.twilio_token,
            },
            "connections": config.flow_clients or max(config.clients // 2, 1),
            "headers": auth,
            "expect_body": prepared["expect"],
        }
    return None


def measure(stack: Stack, name: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run the load processes for one scenario and merge what they measured."""
    config = stack.config
    clients = job.pop("connections", config.clients)
    processes = max(1, min(config.loadgen_processes, clients))
    start_at = time.time() + 1.0
    measure_at = start_at + config.warmup
    end_at = measure_at + config.seconds
    running = []
    for index in range(processes):
        share = {
            **job,
            "host": HOST,
            "port": stack.port,
            "connections": clients // processes + (index < clients % processes),
            "start_at": start_at,
            "measure_at": measure_at,
            "end_at": end_at,
            "timeout": 30,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if "flow" in job:
            share["flow"] = {**job["flow"], "phones": job["flow"]["phones"][index::processes]}
        elif not job.get("repeat"):
            share["targets"] = job["targets"][index::processes]
        running.append((process, json.dumps(share)))
    outputs = []
    try:
        for process, share_json in running:
            process.stdin.write(share_json)
            process.stdin.close()
        # The server's CPU time over the measured window only, when /proc tells it.
        time.sleep(max(measure_at - time.time(), 0))
        cpu_before = group_cpu_seconds(stack.server_group)
        time.sleep(max(end_at - time.time(), 0))
        cpu_used = group_cpu_seconds(stack.server_group) - cpu_before
        for process, _ in running:
            # Bounded: a load process stops at end_at, and each request times out.
            out = process.stdout.read()
            if process.wait() != 0:
                raise BenchError(f"The load generator failed in {name!r}.")
            outputs.append(json.loads(out))
    finally:
        for process, _ in running:
            stop(process)

    exhausted = any(out["exhausted"] for out in outputs)
    window_end = end_at
    if exhausted:
        window_end = max((out["last_end"] for out in outputs), default=end_at)
    return {
        "latencies_ms": [lat for out in outputs for lat in out["latencies_ms"]],
        "window": max(window_end - measure_at, 1e-9),
        "errors": sum(out["errors"] for out in outputs),
        "error_samples": [s for out in outputs for s in out["error_samples"]],
        "exhausted": exhausted,
        "server_cpu_s": cpu_used,
        "loadgen_cpu_s": sum(out["cpu_s"] for out in outputs),
        "span": end_at - start_at,
        "clients": clients,
    }


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's figures over all its rounds, as if measured in one go."""
    latencies = sorted(lat for r in rounds for lat in r["latencies_ms"])
    window = sum(r["window"] for r in rounds)
    cpu_used = sum(r["server_cpu_s"] for r in rounds)
    return {
        "rps": round(len(latencies) / window, 1),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in rounds),
        "error_samples": [s for r in rounds for s in r["error_samples"]][:5],
        "seconds": round(window, 2),
        "targets_ran_out": any(r["exhausted"] for r in rounds),
        "server_cpu_ms_per_request": (
            round(1000 * cpu_used / len(latencies), 2) if latencies and cpu_used else None
        ),
        "server_cpu": round(cpu_used / window, 2),
        "loadgen_cpu": round(
            sum(r["loadgen_cpu_s"] for r in rounds) / sum(r["span"] for r in rounds), 2
        ),
        "clients": rounds[0]["clients"],
        "rounds_rps": [round(len(r["latencies_ms"]) / r["window"], 1) for r in rounds],
    }


def group_cpu_seconds(group: int) -> float:
    """CPU time used so far by the live processes of a process group (gunicorn and its workers)."""
    if not group or not Path("/proc").is_dir():
        return 0.0
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, in ms rounded to 0.01; None when nothing was measured."""
    if not sorted_values:
        return None
    return round(sorted_values[max(math.ceil(q * len(sorted_values)) - 1, 0)], 2)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# --- Report ---------------------------------------------------------------------


def goals(results: dict[str, Any], config: Config) -> dict[str, Any]:
    found: dict[str, Any] = {}
    check, floor, send = results.get("check"), results.get("write_floor"), results.get("send")
    if check and floor and floor["rps"] and floor["p99_ms"] and check["p99_ms"]:
        found["check_vs_write_floor_rps"] = round(check["rps"] / floor["rps"], 2)
        found["check_vs_write_floor_p99"] = round(check["p99_ms"] / floor["p99_ms"], 2)
        found["check_rps_met"] = found["check_vs_write_floor_rps"] >= 0.7
        found["check_vs_write_floor_rps_by_round"] = [
            round(c / f, 2) if f else None
            for c, f in zip(check["rounds_rps"], floor["rounds_rps"], strict=False)
        ]
        found["check_p99_met"] = found["check_vs_write_floor_p99"] <= 2.0
    send_floor = results.get("send_floor")
    if send and send_floor and send_floor["rps"]:
        found["send_vs_send_floor_rps"] = round(send["rps"] / send_floor["rps"], 2)
    if send:
        goal = 0.75 * config.clients / config.latency
        found["send_goal_rps"] = round(goal, 1)
        found["send_vs_goal"] = round(send["rps"] / goal, 2)
        found["send_met"] = send["rps"] >= goal
    return found


def markdown(report: dict[str, Any], skipped: dict[str, str]) -> str:
    s = report["settings"]
    lines = [
        "| scenario | req/s | p50 ms | p99 ms | requests | errors | app CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in SCENARIOS:
        if name in report:
            r = report[name]
            lines.append(
                f"| {name} | {r['rps']:.0f} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} "
                f"| {r['requests']} | {r['errors']} | {ms(r['server_cpu_ms_per_request'])} |"
            )
    g = report["goals"]
    lines.append("")
    if "check_vs_write_floor_rps" in g:
        lines.append(
            f"- check / write_floor throughput: **{g['check_vs_write_floor_rps']:.2f}** "
            f"(goal ≥ 0.70: {'met' if g['check_rps_met'] else 'missed'}; by round: "
            f"{', '.join(f'{x:.2f}' for x in g['check_vs_write_floor_rps_by_round'] if x)})"
        )
        lines.append(
            f"- check / write_floor p99: **{g['check_vs_write_floor_p99']:.2f}** "
            f"(goal ≤ 2.00: {'met' if g['check_p99_met'] else 'missed'})"
        )
    if "send_vs_goal" in g:
        lines.append(
            f"- send: **{report['send']['rps']:.0f} req/s** vs goal 0.75 x {s['clients']} / "
            f"{s['latency']} s = {g['send_goal_rps']:.0f} req/s "
            f"({'met' if g['send_met'] else 'missed'})"
        )
    if "send_vs_send_floor_rps" in g:
        lines.append(
            f"- send / send_floor throughput: **{g['send_vs_send_floor_rps']:.2f}** "
            f"(send_floor: {report['send_floor']['rps']:.0f} req/s, the provider call alone)"
        )
    if "flow" in report:
        lines.append(
            f"- flow: one sample is one whole conversation (3 calls to the server, 2 of them "
            f"running an API call back into it), {report['flow']['clients']} at a time"
        )
    lines.append(
        "- app CPU ms/req: CPU time of gunicorn's processes per measured request (the "
        "database's own CPU not included); less sensitive than req/s to other load on the machine"
    )
    for name, reason in skipped.items():
        lines.append(f"- {name}: not measured ({reason})")
    lines.append("")
    lines.append(
        f"{s['cores']} cores, gunicorn gthread {s['workers']} workers x {s['threads']} threads "
        "(--reuse-port), "
        f"{s['database']}, cache: {s['cache']}, {s['clients']} keep-alive clients in "
        f"{s['loadgen_processes']} load processes, {s['rounds']} rounds of {s['duration']:g} s "
        f"per scenario after {s['warmup']:g} s warm-up each, "
        f"provider latency {s['latency'] * 1000:g} ms, "
        f"load average {s['load_average_before']} before the run and "
        f"{s['load_average_after']} after it, {s['date']}."
    )
    return "\n".join(lines) + "\n"


def run(config: Config) -> dict[str, Any]:
    with contextlib.ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        port = free_port()
        env = base_env(config, workdir, port)
        env["DATABASE_URL"], db_description = cleanup.enter_context(database(config, workdir))
        stack = Stack(config=config, env=env, port=port, workdir=workdir, database=db_description)

        print(f"Migrating a fresh database ({db_description})...", flush=True)
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        if not config.redis_url:
            manage(env, "createcachetable")

        send_missing = send_available()
        needs_twilio = [n for n in ("send_floor", "send", "flow") if n in config.scenarios]
        if needs_twilio and send_missing:
            stack.skipped.update(dict.fromkeys(needs_twilio, send_missing))
        elif needs_twilio:
            stack.twilio_port = twilio_port = free_port()
            stack.twilio_token = token = secrets.token_hex(16)
            log, _ = cleanup.enter_context(
                background(
                    "fake_twilio",
                    [
                        sys.executable,
                        "-m",
                        "tests.fake_twilio",
                        "--port",
                        str(twilio_port),
                        "--latency",
                        str(config.latency),
                        "--account",
                        f"{FAKE_TWILIO_SID}:{token}",
                    ],
                    env,
                    workdir,
                )
            )
            wait_for_port(twilio_port, log)
            env.update(
                {
                    "SMS_BACKEND": "twilio",
                    "TWILIO_ACCOUNT_SID": FAKE_TWILIO_SID,
                    "TWILIO_AUTH_TOKEN": token,
                    "TWILIO_FROM_NUMBER": FROM_NUMBER,
                    "TWILIO_API_BASE_URL": f"http://{HOST}:{twilio_port}",
                }
            )

        stack.api_key = prepare(stack, "bot")["api_key"]
        print(
            f"Starting gunicorn (gthread, {config.workers} workers x {config.threads} threads)...",
            flush=True,
        )
        server_log, stack.server_group = cleanup.enter_context(
            background(
                "gunicorn",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    f"{HOST}:{port}",
                    "--workers",
                    str(config.workers),
                    "--threads",
                    str(config.threads),
                    "--worker-class",
                    "gthread",
                    # A listening socket per worker, as the README's Production
                    # section advises: the kernel spreads the kept-alive clients
                    # over the workers instead of the first awake taking most.
                    "--reuse-port",
                    "--timeout",
                    "60",
                    "--keep-alive",
                    "5",
                    "--log-level",
                    "warning",
                ],
                env,
                workdir,
            )
        )
        wait_for_health(port, server_log)

        load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        rounds: dict[str, list[dict[str, Any]]] = {}
        for number in range(1, config.rounds + 1):
            for name in config.scenarios:
                if name in stack.skipped:
                    continue
                try:
                    job = scenario_job(stack, name)
                except BenchError as exc:
                    if name != "flow":
                        raise
                    stack.skipped[name] = str(exc).strip().splitlines()[-1]
                    continue
                if job is None:
                    continue
                print(
                    f"Round {number}/{config.rounds}: measuring {name} "
                    f"({config.warmup:g} s warm-up + {config.seconds:g} s)..."
                )
                measured = measure(stack, name, job)
                rounds.setdefault(name, []).append(measured)
                r = pooled([measured])
                print(
                    f"  {r['rps']:.0f} req/s, p50 {ms(r['p50_ms'])} ms, p99 {ms(r['p99_ms'])} ms, "
                    f"{r['errors']} errors",
                    flush=True,
                )
                if r["errors"]:
                    print(
                        f"  errors, e.g.: {r['error_samples'][:2]}\n"
                        f"  server log:\n{tail(server_log)}"
                    )
        results = {name: pooled(measured) for name, measured in rounds.items()}

        report = {
            **results,
            "goals": goals(results, config),
            "settings": {
                "cores": os.cpu_count(),
                "workers": config.workers,
                "threads": config.threads,
                "worker_class": "gthread",
                "reuse_port": True,
                "database": stack.database,
                "cache": "Redis" if config.redis_url else "database",
                "latency": config.latency,
                "clients": config.clients,
                "loadgen_processes": config.loadgen_processes,
                "duration": config.seconds,
                "warmup": config.warmup,
                "rounds": config.rounds,
                "load_average_before": load_before,
                "load_average_after": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
                "python": platform.python_version(),
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "not_measured": stack.skipped,
            },
        }
        return report


def main() -> int:
    # A SIGTERM unwinds like Ctrl-C, so the cleanup stops what was started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        config = Config.from_env()
        report = run(config)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    table = markdown(report, report["settings"]["not_measured"])
    results = Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS)
    results.mkdir(parents=True, exist_ok=True)
    (results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / "latest.md").write_text(table)
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
