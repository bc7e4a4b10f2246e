"""The embedded default under load: gunicorn (2 workers x 16 threads) on one SQLite file.

Several worker processes write at once; WAL, IMMEDIATE transactions and a busy
timeout must make them queue for the write lock instead of failing with
"database is locked". The codes are created by a setup process calling the
domain functions against the same file (the locmem outbox lives in one process).
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from config.test_settings import TEST_ENVIRONMENT

BASE_DIR = Path(__file__).resolve().parent.parent
CLIENTS = 32
SEND_RATE = 40  # per bot and hour

pytestmark = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "sqlite").split(":", 1)[0] != "sqlite",
    reason="this test is about SQLite, the embedded default; DATABASE_URL points elsewhere",
)

SETUP_SCRIPT = """
import json, re, sys
import django
django.setup()
from integrations import otp
from integrations.models import Bot, BotAPIKey
from integrations.sms import LocmemBackend

count = int(sys.argv[1])
bot = Bot.objects.create(name="Load bot")
_, key = BotAPIKey.objects.create_key(bot=bot, name="load")
_, rate_key = BotAPIKey.objects.create_key(bot=Bot.objects.create(name="Rate bot"), name="rate")
pending = []
for index in range(count):
    verification = otp.start_verification(f"+1415555{3000 + index}", bot=bot)
    code = re.search(r"code is (\\d+)", LocmemBackend.outbox[-1].body).group(1)
    pending.append({"id": str(verification.pk), "code": code})
print(json.dumps({"key": key, "rate_key": rate_key, "pending": pending}))
"""


@dataclass
class Server:
    url: str
    key: str
    rate_key: str
    pending: list[dict[str, str]]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    # Readiness polling, not a timing assertion: gunicorn needs a moment to boot.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {log.read_text()}")
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or the workers are still importing the app
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer: {log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """gunicorn serving a freshly migrated SQLite file with CLIENTS pending verifications."""
    directory = tmp_path_factory.mktemp("sqlite-load")
    env = {
        **os.environ,
        **TEST_ENVIRONMENT,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "SMS_BACKEND": "locmem",
        "OTP_MAX_SENDS_PER_PHONE": "1000",
        "BOT_SEND_RATE": f"{SEND_RATE}/hour",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    run_manage(env, "manage.py", "migrate", "--noinput")
    run_manage(env, "manage.py", "createcachetable")
    setup = json.loads(run_manage(env, "-c", SETUP_SCRIPT, str(CLIENTS)).strip().splitlines()[-1])

    port = free_port()
    log = directory / "gunicorn.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "16",
                "--timeout",
                "60",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield Server(
            url=url,
            key=setup["key"],
            rate_key=setup["rate_key"],
            pending=setup["pending"],
            log=log,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def all_at_once(count: int, request) -> list[requests.Response]:
    barrier = threading.Barrier(count)
    answers: list = [None] * count

    def worker(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = request(index)
        except requests.RequestException as exc:
            answers[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_thirty_two_concurrent_checks_on_sqlite_all_succeed(server):
    headers = {"Authorization": f"Api-Key {server.key}"}

    def check(index: int) -> requests.Response:
        pending = server.pending[index]
        return requests.post(
            f"{server.url}/api/v1/verifications/{pending['id']}/check",
            json={"code": pending["code"]},
            headers=headers,
            timeout=60,
        )

    answers = all_at_once(CLIENTS, check)

    failures = [a if isinstance(a, Exception) else a.text for a in answers if not _ok(a)]
    assert failures == []
    assert all(a.json()["verified"] is True for a in answers)
    assert "database is locked" not in server.log.read_text()


def sends_to_new_numbers(server: Server, key: str, first: int):
    """A request for all_at_once: send a code to the `first + index`th number."""

    def send(index: int) -> requests.Response:
        return requests.post(
            f"{server.url}/api/v1/verifications",
            json={"to": f"+1415555{first + index}"},
            headers={"Authorization": f"Api-Key {key}"},
            timeout=60,
        )

    return send


def test_thirty_two_concurrent_sends_on_sqlite_all_succeed(server):
    answers = all_at_once(CLIENTS, sends_to_new_numbers(server, server.key, 4000))

    statuses = [a if isinstance(a, Exception) else a.status_code for a in answers]
    assert statuses == [201] * CLIENTS
    assert all("database is locked" not in a.text for a in answers)
    assert "database is locked" not in server.log.read_text()


def test_concurrent_sends_of_one_bot_on_sqlite_stay_within_its_send_rate(server):
    # The count lives in the database cache; its incr must lose no count when
    # two worker processes and their threads add to it at once.
    _wait_unless_the_hour_has_a_minute_left()

    answers = all_at_once(2 * SEND_RATE, sends_to_new_numbers(server, server.rate_key, 5000))

    statuses = Counter(a if isinstance(a, Exception) else a.status_code for a in answers)
    assert statuses == {201: SEND_RATE, 429: SEND_RATE}


def _wait_unless_the_hour_has_a_minute_left() -> None:
    """The rate counts per clock hour: start the sends well inside one."""
    second = time.time() % 3600
    if second > 3540:
        time.sleep(3600 - second + 0.5)


def test_a_2_mb_body_gets_413_with_a_code_from_gunicorn(server):
    response = requests.post(
        f"{server.url}/integrations/custom-feature/send-otp-sms",
        data=json.dumps({"toNumber": "+14155552671", "padding": "x" * (2 * 1024 * 1024)}),
        headers={"Authorization": f"Api-Key {server.key}", "Content-Type": "application/json"},
        timeout=60,
    )

    assert response.status_code == 413
    assert response.json()["code"] == "invalid_request"
    assert response.json()["success"] is False


def _ok(answer: object) -> bool:
    return (
        isinstance(answer, requests.Response)
        and answer.status_code == 200
        and "database is locked" not in answer.text
    )
