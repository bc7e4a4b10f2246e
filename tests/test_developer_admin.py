"""The Developer Section driven as a staff member uses it: forms, Test button, cURL import."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from integrations.models import ApiCallLog, ApiDefinition, ApiHeader

from .developer_helpers import attribute, definition, self_signed_context, serve, silent_server

SECRET = "Api-Key prefix12.VerySecretKeyValue9876"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def server():
    with serve() as loopback:
        yield loopback


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for number, row in enumerate(rows):
        data.update({f"{prefix}-{number}-{key}": value for key, value in row.items()})
    return data


def form_data(url: str, *, headers=(), body=(), query=(), mappings=(), initial=None, **fields):
    initial = initial or {}
    return {
        "name": "Send OTP",
        "description": "",
        "method": "POST",
        "url": url,
        "body_format": "json",
        "timeout": "10",
        "retries": "0",
        **fields,
        **inline("query_params", list(query), initial.get("query_params", 0)),
        **inline("headers", list(headers), initial.get("headers", 0)),
        **inline("body_params", list(body), initial.get("body_params", 0)),
        **inline("response_mappings", list(mappings), initial.get("response_mappings", 0)),
    }


def add(staff, data):
    return staff.post(reverse("admin:integrations_apidefinition_add"), data)


def create_send_otp(staff, server):
    phone, otp_id = attribute("phone", "phone"), attribute("otp_id")
    del phone
    response = add(
        staff,
        form_data(
            server.url("/echo"),
            headers=[{"key": "Authorization", "value": SECRET, "is_secret": "on", "position": "0"}],
            body=[{"key": "toNumber", "value": "{{phone}}", "position": "0"}],
            mappings=[{"source": "json", "path": "method", "attribute": otp_id.pk, "position": 0}],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return ApiDefinition.objects.get(name="Send OTP")


def test_staff_creates_a_definition_with_inline_rows_through_the_add_form(staff, server):
    api = create_send_otp(staff, server)
    header = api.headers.get()
    assert (header.key, header.is_secret, header.value, header.secret_value) == (
        "Authorization",
        True,
        "",
        SECRET,
    )
    assert api.body_params.get().value == "{{phone}}"
    assert api.response_mappings.get().attribute.name == "otp_id"


def test_secrets_are_encrypted_in_the_database(staff, server):
    api = create_send_otp(staff, server)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_value FROM integrations_apiheader WHERE definition_id = %s", [api.pk]
        )
        (raw,) = cursor.fetchone()
    assert raw.startswith("gAAAA")
    assert "VerySecretKeyValue" not in raw


def test_the_database_file_holds_no_secret(staff, server):
    if connection.vendor != "sqlite":
        pytest.skip("reads the SQLite database as a whole")
    create_send_otp(staff, server)
    dump = "\n".join(connection.connection.iterdump())
    assert "Send OTP" in dump
    assert "VerySecretKeyValue" not in dump


def test_it_refuses_an_unknown_placeholder_and_names_it(staff, server):
    attribute("phone")
    response = add(
        staff,
        form_data(server.url("/echo"), body=[{"key": "to", "value": "{{phone}} {{nope}}"}]),
    )
    assert response.status_code == 200
    assert "Unknown attribute &quot;nope&quot;" in response.content.decode()
    assert not ApiDefinition.objects.exists()


def test_it_refuses_an_unknown_placeholder_in_the_url(staff, server):
    response = add(staff, form_data(server.url("/users/{{who}}")))
    assert "Unknown attribute &quot;who&quot;" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "must start with http:// or https://"),
        ("not a url", "must not contain spaces"),
        ("https://{{host}}/x", "not allowed in the host"),
        ("https://user:pw@example.com/", "Credentials in the URL"),
    ],
)
def test_it_refuses_invalid_urls_with_a_clear_message(staff, url, message):
    response = add(staff, form_data(url))
    assert response.status_code == 200
    assert message in response.content.decode()


def test_it_refuses_an_invalid_json_path(staff, server):
    target = attribute("x")
    response = add(
        staff,
        form_data(
            server.url("/json"),
            mappings=[{"source": "json", "path": "data..id", "attribute": target.pk}],
        ),
    )
    assert "Enter a JSON path" in response.content.decode()


def test_it_refuses_retries_for_a_post(staff, server):
    response = add(staff, form_data(server.url("/json"), retries="2"))
    assert "Retries are only allowed for GET, PUT and DELETE" in response.content.decode()


def test_the_change_form_shows_a_secret_only_masked(staff, server):
    api = create_send_otp(staff, server)
    page = staff.get(reverse("admin:integrations_apidefinition_change", args=[api.pk]))
    html = page.content.decode()
    assert "••••9876" in html
    assert "VerySecretKeyValue" not in html


def _change_rows(api, header_value: str) -> dict:
    header = api.headers.get()
    body = api.body_params.get()
    mapping = api.response_mappings.get()
    return form_data(
        api.url,
        headers=[
            {
                "id": header.pk,
                "definition": api.pk,
                "key": "Authorization",
                "value": header_value,
                "is_secret": "on",
                "position": "0",
            }
        ],
        body=[
            {
                "id": body.pk,
                "definition": api.pk,
                "key": "toNumber",
                "value": "{{phone}}",
                "position": "0",
            }
        ],
        mappings=[
            {
                "id": mapping.pk,
                "definition": api.pk,
                "source": "json",
                "path": "method",
                "attribute": mapping.attribute_id,
                "position": "0",
            }
        ],
        initial={"headers": 1, "body_params": 1, "response_mappings": 1},
        description="changed",
    )


def test_leaving_a_secret_empty_keeps_it(staff, server):
    api = create_send_otp(staff, server)
    url = reverse("admin:integrations_apidefinition_change", args=[api.pk])
    response = staff.post(url, _change_rows(api, ""))
    assert response.status_code == 302
    assert ApiHeader.objects.get().secret_value == SECRET
    assert ApiDefinition.objects.get().description == "changed"


def test_typing_a_new_secret_replaces_it(staff, server):
    api = create_send_otp(staff, server)
    url = reverse("admin:integrations_apidefinition_change", args=[api.pk])
    staff.post(url, _change_rows(api, "Api-Key new.OtherSecret5555"))
    assert ApiHeader.objects.get().secret_value == "Api-Key new.OtherSecret5555"


def test_the_api_list_is_searchable(staff, server):
    definition(server.url("/json"), name="Send OTP")
    definition(server.url("/json"), name="Weather")
    page = staff.get(reverse("admin:integrations_apidefinition_changelist"), {"q": "otp"})
    html = page.content.decode()
    assert "Send OTP" in html
    assert "Weather" not in html


def test_the_api_list_shows_each_method_as_http_writes_it_and_a_test_link(staff, server):
    api = definition(server.url("/json"), name="Send OTP")
    html = staff.get(reverse("admin:integrations_apidefinition_changelist")).content.decode()
    assert '<td class="field-method">POST</td>' in html
    assert reverse("admin:integrations_apidefinition_test", args=[api.pk]) in html


def test_pressing_test_runs_the_definition_and_shows_the_result(staff, server):
    api = create_send_otp(staff, server)
    url = reverse("admin:integrations_apidefinition_test", args=[api.pk])
    assert 'name="phone"' in staff.get(url).content.decode()
    page = staff.post(url, {"phone": "+14155552671"})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="test-status">200<' in html
    assert "••••9876" in html
    assert "VerySecretKeyValue" not in html
    assert "&quot;otp_id&quot;: &quot;POST&quot;" in html
    assert server.requests[-1].json() == {"toNumber": "+14155552671"}
    log = ApiCallLog.objects.get()
    assert (log.origin, log.definition, log.status) == ("admin_test", api, 200)


def test_the_test_page_explains_a_failed_call(staff):
    api = definition("http://10.0.0.5/x", method="GET")
    url = reverse("admin:integrations_apidefinition_test", args=[api.pk])
    html = staff.post(url, {}).content.decode()
    assert "address_not_allowed" in html
    assert "not a public address" in html
    assert ApiCallLog.objects.get().error_code == "address_not_allowed"


def test_the_test_page_never_shows_a_code(staff, server):
    attribute("otp_code")
    api = definition(server.url("/code"), body={"userOtp": "{{otp_code}}"})
    url = reverse("admin:integrations_apidefinition_test", args=[api.pk])
    html = staff.post(url, {"otp_code": "482913"}).content.decode()
    assert "[redacted]" in html
    assert "482913" not in html


def test_the_test_page_offers_values_a_previous_test_saved(staff, server):
    api = create_send_otp(staff, server)
    staff.post(reverse("admin:integrations_apidefinition_test", args=[api.pk]), {"phone": "+1"})
    verify = definition(server.url("/json"), name="Verify", body={"systemOtp": "{{otp_id}}"})
    page = staff.get(reverse("admin:integrations_apidefinition_test", args=[verify.pk]))
    assert 'value="POST"' in page.content.decode()


def test_staff_imports_a_curl_command(staff):
    command = (
        "curl -X POST 'https://api.example.com/v1/otp?lang=en' \\\n"
        "  -H 'Authorization: Bearer tok_123456789abc' -H 'Content-Type: application/json' \\\n"
        """  -d '{"to": "+14155552671", "channel": "sms"}'"""
    )
    response = staff.post(
        reverse("admin:integrations_apidefinition_import_curl"), {"command": command}
    )
    api = ApiDefinition.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:integrations_apidefinition_change", args=[api.pk])
    assert (api.method, api.url, api.body_format) == (
        "POST",
        "https://api.example.com/v1/otp",
        "json",
    )
    assert [(r.key, r.value) for r in api.query_params.all()] == [("lang", "en")]
    header = api.headers.get()
    assert (header.key, header.is_secret, header.secret_value) == (
        "Authorization",
        True,
        "Bearer tok_123456789abc",
    )
    assert {r.key: r.value for r in api.body_params.all()} == {
        "to": "+14155552671",
        "channel": "sms",
    }


def test_importing_text_that_is_not_curl_gives_a_clear_message(staff):
    response = staff.post(
        reverse("admin:integrations_apidefinition_import_curl"),
        {"command": "wget https://example.com"},
    )
    assert response.status_code == 200
    assert "This is not a cURL command" in response.content.decode()
    assert not ApiDefinition.objects.exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("curl -X POST", "has no URL"),
        ("curl 'https://a.example.com", "check its quotes"),
        ("curl ftp://a.example.com/x", "must start with http"),
        (
            "curl -d '{bad' -H 'Content-Type: application/json' https://a.example.com",
            "not valid JSON",
        ),
        ("curl --frobnicate https://a.example.com", "not supported"),
        ("curl -X TRACE https://a.example.com", "TRACE is not supported"),
    ],
)
def test_importing_a_bad_curl_command_says_why(staff, command, message):
    response = staff.post(
        reverse("admin:integrations_apidefinition_import_curl"), {"command": command}
    )
    assert response.status_code == 200
    assert message in response.content.decode()


def test_the_api_call_log_is_read_only_and_masks_secrets(staff, server):
    api = definition(server.url("/echo"), secret_headers={"Authorization": SECRET})
    staff.post(reverse("admin:integrations_apidefinition_test", args=[api.pk]), {})
    log = ApiCallLog.objects.get()
    page = staff.get(reverse("admin:integrations_apicalllog_change", args=[log.pk]))
    assert page.status_code == 200
    assert "VerySecretKeyValue" not in page.content.decode()
    listing = staff.get(reverse("admin:integrations_apicalllog_changelist"))
    assert "VerySecretKeyValue" not in listing.content.decode()
    assert staff.get(reverse("admin:integrations_apicalllog_add")).status_code == 403


@pytest.mark.parametrize(
    ("path", "error_code", "message"),
    [
        ("/badjson", "invalid_json", "not valid JSON"),
        ("/huge", "response_too_large", "larger than 1 MiB"),
    ],
)
def test_the_test_page_reports_bad_answers_clearly(staff, server, path, error_code, message):
    api = definition(server.url(path), method="GET")
    page = staff.post(reverse("admin:integrations_apidefinition_test", args=[api.pk]), {})
    html = page.content.decode()
    assert page.status_code == 200
    assert error_code in html
    assert message in html
    assert ApiCallLog.objects.get().error_code == error_code


def test_the_test_page_reports_a_server_that_never_answers(staff):
    with silent_server() as port:
        api = definition(f"http://127.0.0.1:{port}/", method="GET", timeout=1)
        page = staff.post(reverse("admin:integrations_apidefinition_test", args=[api.pk]), {})
    assert "did not answer in time" in page.content.decode()
    assert ApiCallLog.objects.get().error_code == "timeout"


def test_the_test_page_reports_a_tls_error(staff):
    with serve(self_signed_context()) as tls_server:
        api = definition(tls_server.url("/json"), method="GET")
        page = staff.post(reverse("admin:integrations_apidefinition_test", args=[api.pk]), {})
    assert "tls_error" in page.content.decode()
    assert ApiCallLog.objects.get().error_code == "tls_error"
