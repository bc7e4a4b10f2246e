"""Schemathesis fuzzes every operation of /api/schema/ in-process: every answer documented, no 5xx.

The schema is loaded from the WSGI application when this module is collected
(the schema view needs no database), then each operation gets a bounded run.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from integrations.sms import LocmemBackend
from tests.otp_helpers import US_PHONE, VERIFICATIONS

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def pending_id(api) -> str:
    """A real verification of the bot, so operations on one reach past the 404."""
    LocmemBackend.outbox.clear()
    return api.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"]


@pytest.fixture
def wsgi_in_the_test_transaction(pending_id: str) -> Iterator[None]:
    """Let the bare WSGI application's requests share the test's transaction.

    Django closes a connection that is inside a transaction when a request
    starts or ends; its test client turns that off around each of its own
    requests (and turns it back on after, so this runs after the last one,
    in `pending_id`). Schemathesis calls the bare application: on PostgreSQL
    each request would otherwise close the test's connection.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_none_is_a_5xx_bug(
    case, api_key, pending_id, wsgi_in_the_test_transaction
):
    """No 500; and each answer's status and body are among those the schema documents."""
    if "verification_id" in (case.path_parameters or {}):
        case.path_parameters["verification_id"] = pending_id

    case.call_and_validate(
        headers={"Authorization": f"Api-Key {api_key}"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
