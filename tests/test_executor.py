"""The executor against real HTTP servers on loopback."""

import json
import logging

import pytest

from integrations.executor import call_api
from integrations.models import ApiCallLog

from .developer_helpers import definition, self_signed_context, serve, silent_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def server():
    with serve() as loopback:
        yield loopback


def run(api, **attributes):
    return call_api(api, attributes, origin="conversation", conversation_id="conv-1")


def test_it_saves_mapped_fields_of_a_json_answer(server):
    api = definition(server.url("/json"), mappings={"data.items.0.id": "item_id"})
    outcome = run(api)
    assert outcome.ok
    assert outcome.status == 200
    assert outcome.saved == {"item_id": "item-1"}
    assert outcome.error_code == ""


def test_it_saves_the_http_status_when_mapped(server):
    api = definition(server.url("/error"), mappings={"status": "http_status"})
    assert run(api).saved == {"http_status": 400}


def test_it_sends_a_json_body_with_the_attributes_json_encoded(server):
    api = definition(
        server.url("/echo"),
        body={"toNumber": "{{phone}}", "note": 'said "{{phone}}"', "count": "{{n}}"},
    )
    run(api, phone='+1415"5552671', n=3)
    sent = server.requests[-1]
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json() == {"toNumber": '+1415"5552671', "note": 'said "+1415"5552671"', "count": 3}


def test_it_sends_a_form_body_form_encoded(server):
    api = definition(server.url("/echo"), body_format="form", body={"q": "{{text}}"})
    run(api, text="a&b=c")
    sent = server.requests[-1]
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.body == b"q=a%26b%3Dc"


def test_it_percent_encodes_placeholders_in_the_path_and_query(server):
    api = definition(server.url("/echo/{{id}}?x={{id}}"), method="GET", query={"y": "{{id}}"})
    run(api, id="../a b&c=d/#")
    sent = server.requests[-1]
    assert sent.path == "/echo/..%2Fa%20b%26c%3Dd%2F%23"
    assert sent.query == {"x": ["../a b&c=d/#"], "y": ["../a b&c=d/#"]}


def test_it_does_not_send_rows_left_empty(server):
    api = definition(
        server.url("/echo"),
        body={"toNumber": "+14155552671"},
        secret_body={"accountSID": "", "authToken": ""},
    )
    run(api)
    assert server.requests[-1].json() == {"toNumber": "+14155552671"}


def test_it_sends_secret_headers_and_masks_them_in_the_log(server):
    secret = "Api-Key abcdefgh.SECRETSECRETSECRET1234"
    api = definition(server.url("/echo"), secret_headers={"Authorization": secret})
    outcome = run(api)
    assert server.requests[-1].headers["Authorization"] == secret
    log = ApiCallLog.objects.get(pk=outcome.log_id)
    assert "SECRETSECRETSECRET" not in log.request_excerpt + log.response_excerpt + log.url
    assert "••••1234" in log.request_excerpt


def test_it_refuses_a_header_value_with_a_line_break(server):
    api = definition(server.url("/echo"), headers={"X-Name": "{{name}}"})
    outcome = run(api, name="bob\r\nX-Admin: 1")
    assert outcome.error_code == "invalid_request"
    assert server.requests == []


def test_it_logs_every_run_with_origin_and_conversation(server):
    api = definition(server.url("/json"))
    outcome = run(api)
    log = ApiCallLog.objects.get(pk=outcome.log_id)
    assert (log.definition, log.origin, log.conversation_id) == (api, "conversation", "conv-1")
    assert (log.method, log.status, log.outcome, log.error_code) == ("POST", 200, "success", "")
    assert '"item-1"' in log.response_excerpt


def test_it_redacts_codes_in_the_log(server):
    api = definition(server.url("/code"), body={"userOtp": "{{otp_code}}", "other": "x 7391 y"})
    run(api, otp_code="482913")
    log = ApiCallLog.objects.get()
    assert "482913" not in log.request_excerpt
    assert "482913" not in log.response_excerpt
    assert "7391" not in log.request_excerpt


def test_it_treats_a_4xx_as_an_error_but_saves_the_mapped_fields(server):
    api = definition(server.url("/error"), mappings={"code": "error_code", "success": "ok"})
    outcome = run(api)
    assert not outcome.ok
    assert outcome.error_code == "http_error"
    assert outcome.saved == {"error_code": "invalid_phone_number", "ok": False}


def test_it_does_not_follow_redirects(server):
    outcome = run(definition(server.url("/redirect"), method="GET"))
    assert (outcome.status, outcome.error_code) == (302, "redirect_not_followed")
    assert server.hits.get("/json") is None


def test_it_retries_an_idempotent_call_on_503_when_asked(server):
    outcome = run(definition(server.url("/flaky"), method="GET", retries=2))
    assert outcome.ok
    assert server.hits["/flaky"] == 3


def test_it_never_retries_a_post(server):
    outcome = run(definition(server.url("/unavailable"), method="POST", retries=2))
    assert outcome.error_code == "http_error"
    assert server.hits["/unavailable"] == 1


def test_it_does_not_retry_unless_asked(server):
    run(definition(server.url("/unavailable"), method="GET"))
    assert server.hits["/unavailable"] == 1


def test_it_reports_a_connection_refused():
    with silent_server() as port:
        pass  # closed again: nothing listens on the port now
    outcome = run(definition(f"http://127.0.0.1:{port}/", method="GET"))
    assert outcome.error_code == "connection_failed"
    assert ApiCallLog.objects.get().error_code == "connection_failed"


def test_it_times_out_on_a_server_that_never_answers():
    with silent_server() as port:
        outcome = run(definition(f"http://127.0.0.1:{port}/", method="GET", timeout=1))
    assert outcome.error_code == "timeout"
    assert ApiCallLog.objects.get().outcome == "error"


def test_it_refuses_a_response_over_one_mebibyte(server):
    outcome = run(definition(server.url("/huge"), method="GET"))
    assert outcome.error_code == "response_too_large"


def test_it_refuses_a_chunked_response_over_one_mebibyte(server):
    outcome = run(definition(server.url("/huge-chunked"), method="GET"))
    assert outcome.error_code == "response_too_large"


def test_it_reports_invalid_json(server):
    outcome = run(definition(server.url("/badjson"), method="GET"))
    assert outcome.error_code == "invalid_json"
    assert not outcome.ok


def test_it_reports_text_when_a_mapping_needs_json(server):
    api = definition(server.url("/text"), method="GET", mappings={"id": "item_id"})
    outcome = run(api)
    assert outcome.error_code == "invalid_json"
    assert outcome.saved == {}


def test_it_accepts_a_text_answer_without_mappings(server):
    outcome = run(definition(server.url("/text"), method="GET"))
    assert outcome.ok
    assert outcome.body == "plain words"


def test_it_verifies_tls_certificates():
    with serve(self_signed_context()) as tls_server:
        outcome = run(definition(tls_server.url("/json"), method="GET"))
    assert outcome.error_code == "tls_error"
    assert outcome.status is None


def test_it_logs_a_definition_whose_url_is_invalid():
    api = definition("ftp://example.com/file")
    outcome = run(api)
    assert outcome.error_code == "invalid_request"
    log = ApiCallLog.objects.get()
    assert "http" in log.error_message


def test_it_keeps_json_types_of_whole_placeholders(server):
    api = definition(server.url("/echo"), body={"flag": "{{flag}}", "missing": "{{nothing}}"})
    run(api, flag=True)
    assert json.loads(server.requests[-1].body) == {"flag": True, "missing": None}


def test_secrets_stay_out_of_the_application_log(server, caplog):
    caplog.set_level(logging.DEBUG)
    api = definition(
        server.url("/echo"),
        secret_query={"key": "QuerySecretValue777"},
        secret_headers={"Authorization": "HeaderSecretValue888"},
    )
    run(api)
    assert server.requests[-1].query == {"key": ["QuerySecretValue777"]}
    assert "QuerySecretValue" not in caplog.text
    assert "HeaderSecretValue" not in caplog.text
