"""Phone numbers in the API-call log: masked when a row is written, so no one sees them in full.

The log is for debugging a definition; a number's first and last digits are
enough for that, and full numbers are for staff with integrations.view_full_phone.
"""

import pytest

from integrations.executor import call_api
from integrations.models import ApiCallLog

from .developer_helpers import definition, serve
from .log_helpers import csv_of

pytestmark = pytest.mark.django_db

PHONE = "+14155552671"
DIGITS = "4155552671"  # in the clear whether written with +, %2B or nothing
MASKED = "+1415****2671"


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def logged_call() -> ApiCallLog:
    """A call that sent the number in its query and JSON body; the server echoes both."""
    with serve() as server:
        api = definition(
            server.url("/echo"), query={"to": "{{phone}}"}, body={"toNumber": "{{phone}}"}
        )
        outcome = call_api(api, {"phone": PHONE}, origin="admin_test")
        [sent] = server.requests
    assert sent.json() == {"toNumber": PHONE}  # the provider still gets the whole number
    assert outcome.ok
    return ApiCallLog.objects.get(pk=outcome.log_id)


def test_the_logged_request_excerpt_masks_the_number_in_the_body(logged_call):
    assert f'"toNumber": "{MASKED}"' in logged_call.request_excerpt
    assert DIGITS not in logged_call.request_excerpt


def test_the_logged_url_masks_the_percent_encoded_number(logged_call):
    assert logged_call.url.endswith("/echo?to=%2B1415****2671")


def test_the_logged_response_excerpt_masks_the_number(logged_call):
    assert MASKED in logged_call.response_excerpt
    assert DIGITS not in logged_call.response_excerpt


def test_even_a_superuser_sees_the_number_masked_on_the_call_page(logged_call, admin_client):
    page = admin_client.get(f"/admin/integrations/apicalllog/{logged_call.pk}/change/")
    assert page.status_code == 200
    assert MASKED in page.content.decode()
    assert DIGITS not in page.content.decode()


def test_the_call_log_export_has_the_number_masked(logged_call, admin_client):
    rows = csv_of(admin_client.get("/admin/integrations/apicalllog/export/"))
    assert DIGITS not in repr(rows)
    assert any("%2B1415****2671" in cell for row in rows for cell in row)
