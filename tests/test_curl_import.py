"""Importing cURL commands as API definitions."""

import base64

import pytest

from integrations.curl import CurlError, import_curl

pytestmark = pytest.mark.django_db


def rows(queryset) -> dict:
    return {row.key: row.secret_value if row.is_secret else row.value for row in queryset}


def test_it_reads_a_form_body_and_marks_credentials_secret():
    api = import_curl(
        "curl https://api.example.com/sms -d 'to=%2B14155552671' -d 'authToken=abc123456789'"
    )
    assert (api.method, api.body_format) == ("POST", "form")
    assert rows(api.body_params.all()) == {"to": "+14155552671", "authToken": "abc123456789"}
    assert api.body_params.get(key="authToken").is_secret


def test_it_turns_user_into_a_secret_basic_authorization_header():
    api = import_curl("curl -u 'ACxyz:token' https://api.example.com/")
    header = api.headers.get()
    assert header.is_secret
    assert header.secret_value == "Basic " + base64.b64encode(b"ACxyz:token").decode()


def test_it_moves_data_to_the_query_with_get():
    api = import_curl("curl -G https://api.example.com/search -d q=phone -d page=2")
    assert api.method == "GET"
    assert rows(api.query_params.all()) == {"q": "phone", "page": "2"}
    assert not api.body_params.exists()


def test_it_reads_json_option_and_attached_method():
    api = import_curl("""curl -XPUT --json '{"n": 3, "ok": true}' https://api.example.com/x""")
    assert (api.method, api.body_format) == ("PUT", "json")
    assert rows(api.body_params.all()) == {"n": "3", "ok": "true"}


def test_it_ignores_options_that_only_matter_to_curl():
    api = import_curl("curl -sSL --compressed --max-time 5 https://api.example.com/ping")
    assert (api.method, api.url) == ("GET", "https://api.example.com/ping")


def test_it_names_definitions_uniquely():
    first = import_curl("curl https://api.example.com/ping")
    second = import_curl("curl https://api.example.com/ping")
    assert first.name == "GET api.example.com/ping"
    assert second.name == "GET api.example.com/ping (2)"


def test_it_refuses_a_json_body_that_is_not_an_object():
    with pytest.raises(CurlError, match="must be an object"):
        import_curl("curl --json '[1, 2]' https://api.example.com/")


def test_it_refuses_two_urls():
    with pytest.raises(CurlError, match="more than one URL"):
        import_curl("curl https://a.example.com https://b.example.com")
