"""The verification log in the admin, as staff and as a log reviewer use it."""

import io
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import ApiDefinition, Bot, Verification, VerificationEvent
from tests.conftest import code_in
from tests.log_helpers import (
    VERIFICATIONS_URL,
    make_api_call,
    make_event,
    make_verification,
    results,
    reviewer_client,
    staff_client,
)

PHONE = "+14155552671"
MASKED = "+1415****2671"


@pytest.fixture
def superuser(db) -> Client:
    return staff_client("boss", superuser=True)


@pytest.fixture
def reviewer(db) -> Client:
    return reviewer_client()


def change_url(verification: Verification) -> str:
    return f"{VERIFICATIONS_URL}{verification.pk}/change/"


# --- Masked and full phone numbers ------------------------------------------------------


def test_the_list_shows_a_reviewer_masked_numbers(reviewer):
    make_verification(PHONE)
    content = reviewer.get(VERIFICATIONS_URL).content.decode()
    assert MASKED in content
    assert PHONE not in content


def test_the_list_shows_full_numbers_to_staff_with_the_permission(db):
    make_verification(PHONE)
    client = reviewer_client("trusted", full_phones=True)
    assert PHONE in client.get(VERIFICATIONS_URL).content.decode()


def test_the_detail_page_shows_a_reviewer_the_masked_number_only(reviewer):
    verification = make_verification(PHONE)
    content = reviewer.get(change_url(verification)).content.decode()
    assert MASKED in content
    assert PHONE not in content


def test_the_detail_page_never_shows_the_stored_provider_token(superuser):
    verification = make_verification(
        PHONE, provider_account_sid="AC" + "2" * 32, provider_auth_token="bots-own-token-1234"
    )
    content = superuser.get(change_url(verification)).content.decode()
    assert "bots-own-token-1234" not in content


# --- Filters -----------------------------------------------------------------------------


def test_filtering_by_bot_shows_only_that_bots_rows(reviewer):
    mine, other = Bot.objects.create(name="Mine"), Bot.objects.create(name="Other")
    expected = make_verification(bot=mine)
    make_verification(bot=other)
    assert results(reviewer.get(VERIFICATIONS_URL, {"bot__id__exact": mine.pk})) == [expected]


def test_filtering_by_status_shows_only_that_status(reviewer):
    approved = make_verification(status="approved")
    make_verification(status="expired")
    assert results(reviewer.get(VERIFICATIONS_URL, {"status__exact": "approved"})) == [approved]


def test_filtering_by_channel_shows_only_that_channel(reviewer):
    whatsapp = make_verification(channel="whatsapp")
    make_verification(channel="sms")
    assert results(reviewer.get(VERIFICATIONS_URL, {"channel__exact": "whatsapp"})) == [whatsapp]


def test_filtering_by_country_shows_only_that_country(reviewer):
    british = make_verification("+447400123456", country="GB")
    make_verification(PHONE, country="US")
    assert results(reviewer.get(VERIFICATIONS_URL, {"country": "GB"})) == [british]


def test_the_country_filter_offers_each_country_present(reviewer):
    make_verification("+447400123456", country="GB")
    make_verification(PHONE, country="US")
    make_verification(PHONE, country="US")
    response = reviewer.get(VERIFICATIONS_URL)
    [country_filter] = [f for f in response.context["cl"].filter_specs if f.title == "country"]
    assert [value for value, _ in country_filter.lookup_choices] == ["GB", "US"]


def test_filtering_by_delivery_status_shows_only_that_status(reviewer):
    undelivered = make_verification(delivery_status="undelivered")
    make_verification(delivery_status="delivered")
    assert results(reviewer.get(VERIFICATIONS_URL, {"delivery": "undelivered"})) == [undelivered]


def test_filtering_by_no_delivery_report_shows_rows_without_one(reviewer):
    waiting = make_verification(delivery_status="")
    make_verification(delivery_status="delivered")
    assert results(reviewer.get(VERIFICATIONS_URL, {"delivery": "none"})) == [waiting]


def test_filtering_by_date_keeps_the_days_rows(reviewer):
    today = make_verification()
    make_verification(created_at=timezone.now() - timedelta(days=3))
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    params = {
        "created_at__gte": start.strftime("%Y-%m-%d %H:%M:%S+00:00"),
        "created_at__lt": (start + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S+00:00"),
    }
    assert results(reviewer.get(VERIFICATIONS_URL, params)) == [today]


def test_the_date_hierarchy_drills_down_to_a_day(reviewer):
    day = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    wanted = make_verification(created_at=day)
    make_verification(created_at=day + timedelta(days=1))
    params = {"created_at__year": 2026, "created_at__month": 3, "created_at__day": 14}
    assert results(reviewer.get(VERIFICATIONS_URL, params)) == [wanted]


def test_the_list_is_newest_first(reviewer):
    old = make_verification(created_at=timezone.now() - timedelta(hours=2))
    new = make_verification()
    assert results(reviewer.get(VERIFICATIONS_URL)) == [new, old]


# --- Search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    [PHONE, "+1 (415) 555-2671", "14155552671", "4155552671", "555-2671", "001 415 555 2671"],
)
def test_searching_by_a_whole_or_partial_number_finds_the_row(reviewer, term):
    wanted = make_verification(PHONE)
    make_verification("+447400123456", country="GB")
    assert results(reviewer.get(VERIFICATIONS_URL, {"q": term})) == [wanted]


def test_a_leading_plus_searches_from_the_start_of_the_number(reviewer):
    make_verification("+447415123456", country="GB")  # holds "415" but not at the start
    wanted = make_verification(PHONE)
    assert results(reviewer.get(VERIFICATIONS_URL, {"q": "+1415"})) == [wanted]


def test_searching_by_message_sid_finds_the_row(reviewer):
    wanted = make_verification(message_sid="SM" + "a1" * 16)
    make_verification(message_sid="SM" + "b2" * 16)
    assert results(reviewer.get(VERIFICATIONS_URL, {"q": "SM" + "a1" * 16})) == [wanted]


def test_searching_by_the_sid_of_a_replaced_message_finds_the_row(reviewer):
    wanted = make_verification(message_sid="SM" + "a1" * 16)
    VerificationEvent.objects.create(
        verification=wanted, kind=VerificationEvent.Kind.RESENT, message_sid="SM" + "c3" * 16
    )
    assert results(reviewer.get(VERIFICATIONS_URL, {"q": "SM" + "a1" * 16})) == [wanted]
    assert results(reviewer.get(VERIFICATIONS_URL, {"q": "SM" + "c3" * 16})) == [wanted]


def test_searching_by_verification_id_finds_the_row(reviewer):
    wanted = make_verification()
    make_verification()
    assert results(reviewer.get(VERIFICATIONS_URL, {"q": str(wanted.pk)})) == [wanted]


@pytest.mark.parametrize("term", ["letters", "😀📱", "555 😀", "'; DROP TABLE x; --", "٤١٥"])
def test_a_search_that_is_no_number_finds_nothing_and_says_why(reviewer, term):
    make_verification(PHONE)
    response = reviewer.get(VERIFICATIONS_URL, {"q": term})
    assert results(response) == []
    assert "Search by phone number" in response.content.decode()


# --- Detail timeline --------------------------------------------------------------------


def test_the_detail_page_shows_the_event_timeline_in_order(api, outbox, reviewer):
    sent = api.post("/api/v1/verifications", {"to": PHONE}, format="json").json()
    check_url = f"/api/v1/verifications/{sent['id']}/check"
    code = code_in(outbox[0])
    wrong = ("1" if code[0] != "1" else "2") + code[1:]
    api.post(check_url, {"code": wrong}, format="json")
    api.post(check_url, {"code": code}, format="json")
    make_event(
        Verification.objects.get(pk=sent["id"]), VerificationEvent.Kind.DELIVERY, status="delivered"
    )
    content = reviewer.get(f"{VERIFICATIONS_URL}{sent['id']}/change/").content.decode().lower()
    labels = ["sent", "check failed", "approved", "delivery update"]
    positions = [content.index(f"<td>{label}</td>") for label in labels]
    assert positions == sorted(positions)
    assert "status: delivered" in content
    assert code not in content


def test_a_verification_without_events_says_so(reviewer):
    verification = make_verification()
    assert "No events." in reviewer.get(change_url(verification)).content.decode()


def test_an_unknown_verification_id_does_not_fail(reviewer):
    response = reviewer.get(f"{VERIFICATIONS_URL}not-a-uuid/change/", follow=True)
    assert response.status_code == 200


# --- Permission matrix ----------------------------------------------------------------


def test_a_reviewer_may_view_the_log(reviewer):
    make_verification()
    assert reviewer.get(VERIFICATIONS_URL).status_code == 200


@pytest.mark.parametrize(
    "url", ["/admin/integrations/bot/", "/admin/integrations/botapikey/", "/admin/auth/user/"]
)
def test_a_reviewer_gets_403_on_bots_keys_and_users(reviewer, url):
    assert reviewer.get(url).status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "/admin/integrations/apidefinition/",
        "/admin/integrations/apidefinition/add/",
        "/admin/integrations/customattribute/",
        "/admin/chatflows/flow/",
    ],
)
def test_a_reviewer_gets_403_on_api_definitions_attributes_and_flows(reviewer, url):
    assert reviewer.get(url).status_code == 403


def test_staff_without_log_permissions_get_403(db):
    client = staff_client("other-staff")
    assert client.get(VERIFICATIONS_URL).status_code == 403


def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login_page(db):
    response = Client().get(VERIFICATIONS_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("who", ["superuser", "reviewer"])
def test_nobody_can_add_a_log_row(request, who):
    client = request.getfixturevalue(who)
    assert client.get(VERIFICATIONS_URL + "add/").status_code == 403


@pytest.mark.parametrize("who", ["superuser", "reviewer"])
def test_nobody_can_change_a_log_row(request, who):
    client = request.getfixturevalue(who)
    verification = make_verification(status="pending")
    response = client.post(change_url(verification), {"status": "approved", "phone": "+1"})
    assert response.status_code == 403
    verification.refresh_from_db()
    assert verification.status == "pending"


@pytest.mark.parametrize("who", ["superuser", "reviewer"])
def test_nobody_can_delete_a_log_row(request, who):
    client = request.getfixturevalue(who)
    verification = make_verification()
    response = client.post(f"{VERIFICATIONS_URL}{verification.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Verification.objects.filter(pk=verification.pk).exists()


def test_the_list_offers_no_bulk_delete(superuser):
    make_verification()
    response = superuser.get(VERIFICATIONS_URL)
    assert response.context["action_form"] is None
    assert response.context["cl"].model_admin.get_actions(response.wsgi_request) == {}


def test_the_detail_page_is_read_only_for_a_superuser(superuser):
    verification = make_verification()
    content = superuser.get(change_url(verification)).content.decode()
    assert 'name="_save"' not in content
    assert "/delete/" not in content


# --- Scale -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
def test_a_large_list_is_not_counted_row_by_row(reviewer):
    call_command("seed_fake_logs", 12_000, "--seed", "3", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE integrations_verification")
    with CaptureQueriesContext(connection) as queries:
        response = reviewer.get(VERIFICATIONS_URL)
    assert len(results(response)) == 50
    assert not [q for q in queries if "COUNT(" in q["sql"].upper()]
    assert (
        "database&#x27;s estimate" in response.content.decode()
        or "estimate" in response.content.decode()
    )


def test_seeded_rows_carry_their_message_as_real_sends_do(db):
    call_command("seed_fake_logs", 200, "--seed", "5", stdout=io.StringIO())

    rows = Verification.objects.with_message_sid()
    sent = [v for v in rows if v.status != Verification.Status.FAILED]
    assert sent and all(v.message_sid.startswith("SM") for v in sent)
    assert all(v.message_sid is None for v in rows if v.status == Verification.Status.FAILED)


def test_a_quoted_search_term_does_not_fail(reviewer):
    make_verification(PHONE)
    response = reviewer.get(VERIFICATIONS_URL + "?q=" + quote('"415'))
    assert response.status_code == 200


# --- The API-call log -------------------------------------------------------------------

CALLS_URL = "/admin/integrations/apicalllog/"


@pytest.fixture
def definitions(db) -> tuple[ApiDefinition, ApiDefinition]:
    return (
        ApiDefinition.objects.create(name="Send OTP", method="POST", url="https://a.example/send"),
        ApiDefinition.objects.create(name="Verify OTP", method="POST", url="https://a.example/v"),
    )


def test_a_reviewer_may_view_the_api_call_log(reviewer):
    make_api_call()
    assert len(results(reviewer.get(CALLS_URL))) == 1


def test_filtering_calls_by_definition_shows_only_its_calls(reviewer, definitions):
    send, verify = definitions
    wanted = make_api_call(definition=send, definition_name=send.name)
    make_api_call(definition=verify, definition_name=verify.name)
    assert results(reviewer.get(CALLS_URL, {"definition__id__exact": send.pk})) == [wanted]


def test_filtering_calls_by_outcome_shows_only_errors(reviewer):
    failed = make_api_call(outcome="error")
    make_api_call(outcome="success")
    assert results(reviewer.get(CALLS_URL, {"outcome__exact": "error"})) == [failed]


@pytest.mark.parametrize(("status_class", "wanted_status"), [("4xx", 404), ("5xx", 503)])
def test_filtering_calls_by_status_class(reviewer, status_class, wanted_status):
    for status in (200, 302, 404, 503):
        make_api_call(status=status)
    shown = results(reviewer.get(CALLS_URL, {"status_class": status_class}))
    assert [call.status for call in shown] == [wanted_status]


def test_filtering_calls_without_any_response(reviewer):
    timed_out = make_api_call(outcome="error", status=None, error_code="timeout")
    make_api_call(status=200)
    assert results(reviewer.get(CALLS_URL, {"status_class": "none"})) == [timed_out]


def test_filtering_calls_by_date_keeps_the_days_calls(reviewer):
    today = make_api_call()
    make_api_call(created_at=timezone.now() - timedelta(days=3))
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    params = {
        "created_at__gte": start.strftime("%Y-%m-%d %H:%M:%S+00:00"),
        "created_at__lt": (start + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S+00:00"),
    }
    assert results(reviewer.get(CALLS_URL, params)) == [today]


def test_the_call_detail_shows_the_redacted_request_and_response(reviewer):
    call = make_api_call(
        request_excerpt='{"toNumber": "+14155552671", "userOtp": "[redacted]"}',
        response_excerpt='{"success": true}',
    )
    content = reviewer.get(f"{CALLS_URL}{call.pk}/change/").content.decode()
    assert "userOtp&quot;: &quot;[redacted]" in content
    assert "success&quot;: true" in content


@pytest.mark.parametrize("who", ["superuser", "reviewer"])
def test_nobody_can_change_or_delete_an_api_call_row(request, who):
    client = request.getfixturevalue(who)
    call = make_api_call(outcome="error")
    assert client.post(f"{CALLS_URL}{call.pk}/change/", {"outcome": "success"}).status_code == 403
    assert client.post(f"{CALLS_URL}{call.pk}/delete/", {"post": "yes"}).status_code == 403
    call.refresh_from_db()
    assert call.outcome == "error"


def test_a_reviewers_admin_home_lists_only_the_two_logs(reviewer):
    response = reviewer.get("/admin/")
    models = {
        model["object_name"] for app in response.context["app_list"] for model in app["models"]
    }
    assert models == {"Verification", "ApiCallLog", "Dashboard"}


def test_the_log_reviewer_group_can_be_created_again_without_change(db):
    call_command("create_log_reviewer_group", verbosity=0)
    call_command("create_log_reviewer_group", verbosity=0)
    group = Group.objects.get(name="log reviewer")
    assert sorted(group.permissions.values_list("codename", flat=True)) == [
        "view_apicalllog",
        "view_verification",
        "view_verificationevent",
    ]
