"""The PostgreSQL backend: health checks, the pool, prepared statements, batches within the
parameter limit."""

import contextlib
import json
import os
import resource
import select
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq

from chatflows.models import Conversation, Flow
from integrations.executor import call_api
from tests.developer_helpers import definition
from tests.otp_helpers import US_PHONE, run_with_settings, start

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("these are PostgreSQL's: set DATABASE_URL to a server")


def settings_for(**changes: Any) -> dict[str, Any]:
    """The test database's settings with `changes`: no pool unless `pool` gives its options."""
    options = {**connection.settings_dict["OPTIONS"]}
    options.pop("pool", None)
    pool = changes.pop("pool", None)
    if pool:
        options["pool"] = pool
    return {**connection.settings_dict, "OPTIONS": options, **changes}


@pytest.fixture
def reused() -> Iterator[BaseDatabaseWrapper]:
    """A connection of its own, open and idle, as a worker thread keeps one between requests
    when there is no pool (DATABASE_POOL_SIZE=0)."""
    wrapper = type(connections["default"])(settings_for(CONN_MAX_AGE=60), "default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


@pytest.fixture
def pooled() -> Iterator[BaseDatabaseWrapper]:
    """A connection with a pool of its own, of one connection."""
    pool = {"min_size": 1, "max_size": 1, "timeout": 10}
    wrapper = type(connections["default"])(settings_for(CONN_MAX_AGE=0, pool=pool), "pooled")
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def pooled_connection(wrapper: BaseDatabaseWrapper) -> Any:
    """The one connection of `wrapper`'s pool, left in the pool."""
    wrapper.ensure_connection()
    raw = wrapper.connection
    wrapper.close()
    return raw


@contextlib.contextmanager
def wire(raw: Any) -> Iterator[list[str]]:
    """What the client sends on the psycopg connection `raw` meanwhile, as libpq's trace lines."""
    sent: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn = raw.pgconn
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
        trace.seek(0)
        sent.extend(line for line in trace.read().splitlines() if line.startswith("F"))


def queries(sent: list[str]) -> list[str]:
    return [line for line in sent if "Query" in line or "Parse" in line]


def start_request(wrapper: BaseDatabaseWrapper) -> None:
    # What Django runs on each connection as a request starts (close_old_connections).
    wrapper.close_if_unusable_or_obsolete()


def terminate(raw: Any) -> int:
    """Have the server close the connection `raw`, and wait for its goodbye to arrive."""
    pid = raw.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye (its error, then the end of the stream) reaches the socket.
    readable, _, _ = select.select([raw.fileno()], [], [], 10)
    assert readable
    return pid


def backend_pid(wrapper: BaseDatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_sound_connection_starts_a_request_without_a_health_check_query(reused):
    start_request(reused)
    with wire(reused.connection) as sent, reused.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)

    assert len(queries(sent)) == 1
    assert "SELECT 2" in queries(sent)[0]


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it(reused):
    old_pid = terminate(reused.connection)

    start_request(reused)

    assert backend_pid(reused) != old_pid


def test_a_sound_pooled_connection_is_handed_out_without_a_check_query(pooled):
    raw = pooled_connection(pooled)
    with wire(raw) as sent:
        start_request(pooled)
        with pooled.cursor() as cursor:
            cursor.execute("SELECT 2")
            assert cursor.fetchone() == (2,)

    assert pooled.connection is raw
    assert len(queries(sent)) == 1
    assert "SELECT 2" in queries(sent)[0]


def test_a_pooled_connection_the_server_closed_is_replaced_before_it_is_handed_out(pooled):
    old_pid = terminate(pooled_connection(pooled))

    start_request(pooled)

    assert backend_pid(pooled) != old_pid


def test_a_statement_run_again_on_a_connection_is_parsed_and_planned_once(reused):
    with wire(reused.connection) as sent, reused.cursor() as cursor:
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
        " 'pool': db.get('OPTIONS', {}).get('pool'), 'conn_max_age': db['CONN_MAX_AGE'],"
        " 'server_side_cursors': not db['DISABLE_SERVER_SIDE_CURSORS']}))"
    )
    url = "postgres://chatbot@db.example/chatbot_auth"
    result = run_with_settings(code, DATABASE_URL=url, **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_process_shares_a_pool_of_connections_unless_told_otherwise():
    pooled = database_settings(DATABASE_POOL_SIZE="6")
    assert pooled["pool"] == {"min_size": 1, "max_size": 6, "timeout": 10}
    assert pooled["conn_max_age"] == 0
    assert database_settings()["pool"]["max_size"] == 8

    unpooled = database_settings(DATABASE_POOL_SIZE="0", CONN_MAX_AGE="30")
    assert unpooled["pool"] is None
    assert unpooled["conn_max_age"] == 30


def test_a_pooler_in_transaction_mode_can_be_served():
    behind_a_pooler = database_settings(
        DATABASE_POOL_SIZE="0",
        DATABASE_PREPARED_STATEMENTS="False",
        DATABASE_SERVER_SIDE_CURSORS="False",
    )
    assert behind_a_pooler["options"] == []
    assert behind_a_pooler["server_side_cursors"] is False

    default = database_settings()
    assert default["options"] == ["pool", "prepare_threshold", "server_side_binding"]
    assert default["server_side_cursors"] is True


@pytest.fixture
def reused_on_a_high_descriptor() -> Iterator[BaseDatabaseWrapper]:
    """Like `reused`, its socket numbered above 1023, as in a worker with many clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"this machine allows {hard} open files, too few to pass 1023")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    wrapper = type(connections["default"])(settings_for(CONN_MAX_AGE=60), "default")
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
    with wire(wrapper.connection) as sent, wrapper.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)

    assert queries(sent) != []
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


# --- The pool's connections while a thread waits on the network -------------------


def handed_out() -> int:
    """Connections of the default pool that threads hold now."""
    stats = connection.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.fixture
def pool(transactional_db) -> Any:
    """The default pool, open, with no connection handed out."""
    if connection.pool is None:
        pytest.skip("DATABASE_POOL_SIZE is 0")
    connection.ensure_connection()  # opens the pool, if no test did yet
    connection.close()  # wait() returns once the connections it opened are idle in it
    connection.pool.wait()
    return connection.pool


@contextlib.contextmanager
def running(work: Callable[[], Any]) -> Iterator[list[Any]]:
    """Run `work` in a thread (which closes its connection after), joined on leaving.

    Yields the list its result lands in. This thread gives its own connection
    back first, so that the pool's figures count the other thread's only.
    """
    connection.close()
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(work())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield results
    finally:
        thread.join()


@pytest.mark.django_db(transaction=True)
def test_a_send_holds_no_connection_while_the_provider_answers(pool, api, fake_twilio):
    fake_twilio.latency = 2
    with running(lambda: start(api, US_PHONE)) as answers:
        assert fake_twilio.wait_for_requests(1)
        during_the_call = handed_out()

    assert answers[0].status_code == 201
    assert during_the_call == 0


@pytest.mark.django_db(transaction=True)
def test_an_api_call_holds_no_connection_while_the_api_answers(pool, settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        api = definition(f"http://127.0.0.1:{listener.getsockname()[1]}/", method="GET")
        with running(lambda: call_api(api, {}, origin="conversation")) as outcomes:
            listener.settimeout(10)
            accepted, _ = listener.accept()  # the request is on its way: the API "thinks"
            during_the_call = handed_out()
            accepted.close()

    assert outcomes[0].error_code == "connection_failed"
    assert during_the_call == 0


@pytest.mark.django_db(transaction=True)
def test_a_request_that_finds_no_free_connection_answers_503(pool, api, outbox):
    connection.close()
    held = [pool.getconn() for _ in range(pool.max_size)]
    usual, pool.timeout = pool.timeout, 0.2
    try:
        answer = start(api, US_PHONE)
    finally:
        pool.timeout = usual
        for raw in held:
            pool.putconn(raw)

    assert answer.status_code == 503
    assert answer.json()["code"] == "database_unavailable"
    assert answer["Retry-After"] == "1"
    assert outbox == []


def test_a_process_opens_few_connections_and_the_pool_grows_as_threads_need_more():
    """A management command holds one or two connections; a busy worker up to
    DATABASE_POOL_SIZE."""
    wrapper = type(connections["default"])({**connection.settings_dict}, "fresh")
    try:
        wrapper.ensure_connection()
        wrapper.close()
        pool = wrapper.pool
        pool.wait()
        # The pool opens one; the first query, come before it, makes it grow by one.
        assert pool.get_stats()["pool_size"] <= 2

        held = [pool.getconn() for _ in range(pool.max_size)]
        for raw in held:
            pool.putconn(raw)
        assert pool.get_stats()["pool_size"] == pool.max_size == 8
    finally:
        wrapper.close_pool()
