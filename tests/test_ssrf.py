"""Outbound calls reach only public addresses, unless a host is allowlisted; placeholders never
move a request to another scheme, host or port, nor add a header line."""

import json
import socket
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations.executor import CallError, call_api, render_request
from integrations.models import ApiCallLog

from .developer_helpers import attribute, definition, serve

pytestmark = pytest.mark.django_db

real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def server():
    with serve() as loopback:
        yield loopback


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for made-up names at the DNS edge; every other name resolves for real."""
    answers: dict[str, list[list[str]]] = {}
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            asked.append(host)
            # Each lookup takes the next answer, as a rebinding DNS server would.
            addresses = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (address, port),
                )
                for address in addresses
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, asked


def run(api):
    return call_api(api, {}, origin="admin_test")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "100.64.0.1",
        "10.0.0.5",
        "localhost",
    ],
)
def test_it_refuses_non_public_addresses(host, server):
    outcome = run(definition(f"http://{host}:{server.port}/json", method="GET"))
    assert outcome.error_code == "address_not_allowed"
    assert server.requests == []
    assert ApiCallLog.objects.get().error_code == "address_not_allowed"


def test_it_reaches_a_private_address_when_the_host_is_allowlisted(settings, server):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    outcome = run(definition(server.url("/json"), method="GET"))
    assert outcome.ok


def test_the_allowlist_matches_the_host_as_written(settings, server):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    outcome = run(definition(f"http://2130706433:{server.port}/json", method="GET"))
    assert outcome.error_code == "address_not_allowed"


def test_it_refuses_a_name_with_one_public_and_one_private_address(fake_dns, server):
    answers, _ = fake_dns
    answers["mixed.example"] = [["93.184.215.14", "127.0.0.1"]]
    outcome = run(definition(f"http://mixed.example:{server.port}/json", method="GET"))
    assert outcome.error_code == "address_not_allowed"
    assert server.requests == []


def test_it_connects_to_the_address_it_checked_without_asking_dns_again(settings, fake_dns, server):
    answers, asked = fake_dns
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["pinned.example"]
    # A second lookup would answer an address nobody listens on.
    answers["pinned.example"] = [["127.0.0.1"], ["10.255.255.1"]]
    outcome = run(definition(f"http://pinned.example:{server.port}/json", method="GET"))
    assert outcome.ok
    assert asked == ["pinned.example"]
    assert server.requests[0].headers["Host"] == f"pinned.example:{server.port}"


def test_it_does_not_follow_a_redirect_to_loopback(settings, fake_dns, server):
    answers, _ = fake_dns
    answers["redirector.example"] = [["127.0.0.1"]]
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["redirector.example"]
    outcome = run(definition(f"http://redirector.example:{server.port}/redirect", method="GET"))
    assert outcome.error_code == "redirect_not_followed"
    assert "/json" not in server.hits


# --- Placeholders cannot move the request -------------------------------------------------

values = st.text(max_size=40)


@pytest.fixture
def templated(db):
    attribute("x")
    return definition(
        "https://api.example.com:8443/a/{{x}}?q={{x}}",
        query={"k": "{{x}}"},
        headers={"X-Value": "v={{x}}"},
        body={"raw": "{{x}}", "text": "pre {{x}}"},
    )


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values)
def test_no_placeholder_value_changes_scheme_host_or_port(templated, value):
    try:
        rendered = render_request(templated, {"x": value})
    except CallError:
        # Only a header line break may refuse the request.
        assert any(ch in value for ch in "\r\n\0") or not _latin1(value)
        return
    parts = urlsplit(rendered.url)
    assert (parts.scheme, parts.hostname, parts.port) == ("https", "api.example.com", 8443)
    assert parts.path.count("/") == 2
    query = parse_qs(parts.query, keep_blank_values=True)
    assert set(query) <= {"q", "k"}


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values)
def test_placeholder_values_arrive_intact(templated, value):
    try:
        rendered = render_request(templated, {"x": value})
    except CallError:
        return
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return  # lone surrogates cannot travel as UTF-8 in a URL
    parts = urlsplit(rendered.url)
    assert unquote(parts.path.rsplit("/", 1)[1]) == value
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["q"] == [value]
    assert query["k"] == [value]
    assert json.loads(rendered.body) == {"raw": value, "text": "pre " + value}


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values)
def test_a_header_never_gains_a_line(templated, value):
    try:
        rendered = render_request(templated, {"x": value})
    except CallError as exc:
        assert exc.code == "invalid_request"
        assert any(ch in value for ch in "\r\n\0") or not _latin1(value)
        return
    assert not any(ch in rendered.headers["X-Value"] for ch in "\r\n\0")
    assert rendered.headers["X-Value"] == "v=" + value


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "2002:7f00:1::", "fe80::1", "fc00::1", "224.0.0.1", "0.0.0.0"],
)
def test_it_refuses_addresses_that_lead_back_inside(address, fake_dns):
    answers, _ = fake_dns
    answers["inside.example"] = [[address]]
    outcome = run(definition("http://inside.example/x", method="GET"))
    assert outcome.error_code == "address_not_allowed"
