"""The PostgreSQL backend: health check, prepared statements, batches within the parameter limit."""

import contextlib
import json
import os
import resource
import select
import tempfile
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq

from chatflows.models import Conversation, Flow
from tests.otp_helpers import US_PHONE, run_with_settings, start

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the health check is PostgreSQL's: set DATABASE_URL to a server")


@pytest.fixture
def reused() -> Iterator[BaseDatabaseWrapper]:
    """A connection of its own, open and idle, as a worker thread keeps one between requests."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


@contextlib.contextmanager
def wire(wrapper: BaseDatabaseWrapper) -> Iterator[list[str]]:
    """What the client sends to the server meanwhile, as libpq's trace lines."""
    sent: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn = wrapper.connection.pgconn
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
        trace.seek(0)
        sent.extend(line for line in trace.read().splitlines() if line.startswith("F"))


def start_request(wrapper: BaseDatabaseWrapper) -> None:
    # What Django runs on each connection as a request starts (close_old_connections).
    wrapper.close_if_unusable_or_obsolete()


def test_a_sound_connection_starts_a_request_without_a_health_check_query(reused):
    start_request(reused)
    with wire(reused) as sent, reused.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)

    queries = [line for line in sent if "Query" in line or "Parse" in line]
    assert len(queries) == 1
    assert "SELECT 2" in queries[0]


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it(reused):
    old_pid = reused.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    # The server's goodbye (its error, then the end of the stream) reaches the socket.
    readable, _, _ = select.select([reused.connection.fileno()], [], [], 10)
    assert readable

    start_request(reused)
    with reused.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()

    assert new_pid != old_pid


def test_a_statement_run_again_on_a_connection_is_parsed_and_planned_once(reused):
    with wire(reused) as sent, reused.cursor() as cursor:
        for n in range(12):
            cursor.execute("SELECT %s::int + 1", [n])
            assert cursor.fetchone() == (n + 1,)

    parses = [line for line in sent if "\tParse\t" in line]
    named = [line for line in parses if '"SELECT $1::int + 1"' in line and '""' not in line]
    # Sent alone the first five times, then prepared once under a name and bound to it.
    assert len(named) == 1
    assert len(parses) == 6
    assert sum(1 for line in sent if "\tBind\t" in line) == 12


def test_batches_stay_within_the_parameters_one_statement_may_take(bot):
    # With server-side binding each id is a parameter: Django must split its
    # batches, or PostgreSQL refuses the statement (seen deleting a big flow).
    flow = Flow.objects.create(bot=bot, name="Busy flow")
    count = 65_535 + 1  # the most PostgreSQL's protocol takes, and one more
    Conversation.objects.bulk_create(Conversation(flow=flow, bot=bot) for _ in range(count))

    deleted = flow.delete()

    assert deleted == (count + 1, {"chatflows.Conversation": count, "chatflows.Flow": 1})
    assert not Conversation.objects.exists()


def database_settings(**environment: str) -> dict:
    """What the project's settings make of a PostgreSQL DATABASE_URL in `environment`."""
    code = (
        "import json; from config import settings; db = settings.DATABASES['default'];"
        "print(json.dumps({'options': sorted(db.get('OPTIONS', {})),"
        " 'server_side_cursors': not db['DISABLE_SERVER_SIDE_CURSORS']}))"
    )
    url = "postgres://chatbot@db.example/chatbot_auth"
    result = run_with_settings(code, DATABASE_URL=url, **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_pooler_in_transaction_mode_can_be_served():
    assert database_settings() == {
        "options": ["prepare_threshold", "server_side_binding"],
        "server_side_cursors": True,
    }
    behind_a_pooler = database_settings(
        DATABASE_PREPARED_STATEMENTS="False", DATABASE_SERVER_SIDE_CURSORS="False"
    )
    assert behind_a_pooler == {"options": [], "server_side_cursors": False}


@pytest.fixture
def reused_on_a_high_descriptor() -> Iterator[BaseDatabaseWrapper]:
    """Like `reused`, its socket numbered above 1023, as in a worker with many clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"this machine allows {hard} open files, too few to pass 1023")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    wrapper = connections.create_connection("default")
    try:
        wrapper.ensure_connection()
        assert wrapper.connection.fileno() > 1023
        yield wrapper
    finally:
        wrapper.close()
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connection_on_a_descriptor_above_1023_is_checked_too(reused_on_a_high_descriptor):
    wrapper = reused_on_a_high_descriptor
    start_request(wrapper)
    with wire(wrapper) as sent, wrapper.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)

    assert [line for line in sent if "Query" in line or "Parse" in line] != []
    assert not any("SELECT 1" in line for line in sent)


@pytest.mark.django_db(transaction=True)
def test_a_send_that_waits_too_long_for_a_lock_answers_503_and_sends_nothing(api, outbox):
    assert start(api, US_PHONE).status_code == 201
    params = connection.get_connection_params()
    with psycopg.connect(**params) as holder:  # another session holds the phone's row
        holder.execute(
            "SELECT 1 FROM integrations_phonestate WHERE phone = %s FOR UPDATE", [US_PHONE]
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            answer = start(api, US_PHONE)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")

    assert answer.status_code == 503
    assert answer.json()["code"] == "database_unavailable"
    assert answer["Retry-After"] == "1"
    assert len(outbox) == 1
