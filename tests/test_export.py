"""CSV export of the logs, as staff download it from the admin list."""

import pytest
from django.test import Client

from integrations.models import Bot
from tests.log_helpers import (
    EXPORT_URL,
    csv_of,
    make_api_call,
    make_verification,
    reviewer_client,
    staff_client,
)

HEADER = [
    "id",
    "created_at",
    "phone",
    "country",
    "bot",
    "channel",
    "status",
    "attempts",
    "send_count",
    "delivery_status",
    "error_code",
    "message_sid",
]


@pytest.fixture
def reviewer(db) -> Client:
    return reviewer_client()


def test_the_export_is_a_streamed_csv_download(reviewer):
    make_verification()
    response = reviewer.get(EXPORT_URL)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="verifications-')


def test_the_export_holds_one_line_per_row_with_its_fields(reviewer):
    bot = Bot.objects.create(name="Support bot")
    verification = make_verification(
        "+14155552671",
        bot=bot,
        status="approved",
        attempts=1,
        send_count=2,
        delivery_status="delivered",
        message_sid="SM123",
    )
    header, row = csv_of(reviewer.get(EXPORT_URL))
    assert header == HEADER
    assert row == [
        str(verification.pk),
        verification.created_at.isoformat(),
        "+1415****2671",
        "US",
        "Support bot",
        "sms",
        "approved",
        "1",
        "2",
        "delivered",
        "",
        "SM123",
    ]


def test_the_export_follows_the_lists_filters(reviewer):
    make_verification(status="approved")
    make_verification(status="expired")
    make_verification(status="approved", country="GB", phone="+447400123456")
    rows = csv_of(reviewer.get(EXPORT_URL, {"status__exact": "approved", "country": "US"}))[1:]
    assert [(row[3], row[6]) for row in rows] == [("US", "approved")]


def test_the_export_follows_the_search(reviewer):
    make_verification("+14155552671")
    make_verification("+447400123456", country="GB")
    rows = csv_of(reviewer.get(EXPORT_URL, {"q": "7400 123"}))[1:]
    assert [row[2] for row in rows] == ["+4474****3456"]


def test_the_export_is_newest_first_and_complete_beyond_one_page(reviewer):
    made = [make_verification() for _ in range(120)]  # more than a list page (50)
    rows = csv_of(reviewer.get(EXPORT_URL))[1:]
    assert [row[0] for row in rows] == [str(v.pk) for v in reversed(made)]


def test_the_export_shows_full_numbers_only_with_the_permission(db):
    make_verification("+14155552671")
    rows = csv_of(reviewer_client("trusted", full_phones=True).get(EXPORT_URL))
    assert rows[1][2] == "+14155552671"


def test_cells_a_spreadsheet_would_run_as_formulas_are_defused(reviewer):
    bot = Bot.objects.create(name='=HYPERLINK("http://evil.example","x")')
    make_verification(bot=bot)
    row = csv_of(reviewer.get(EXPORT_URL))[1]
    assert row[4] == "'" + bot.name
    assert row[2] == "+1415****2671"  # a phone number is no formula


def test_an_empty_list_exports_only_the_header(reviewer):
    assert csv_of(reviewer.get(EXPORT_URL)) == [HEADER]


def test_a_search_for_letters_exports_only_the_header(reviewer):
    make_verification()
    assert csv_of(reviewer.get(EXPORT_URL, {"q": "emoji 😀"})) == [HEADER]


def test_an_unknown_filter_is_a_bad_request(reviewer):
    response = reviewer.get(EXPORT_URL, {"nonsense__field": "1"})
    assert response.status_code == 400


def test_staff_without_the_view_permission_cannot_export(db):
    make_verification()
    assert staff_client("no-perms").get(EXPORT_URL).status_code == 403


def test_a_visitor_who_is_not_logged_in_cannot_export(db):
    response = Client().get(EXPORT_URL)
    assert response.status_code == 302


def test_the_api_call_log_exports_its_filtered_rows(reviewer):
    make_api_call(outcome="error", status=503, error_code="upstream_error")
    make_api_call(outcome="success")
    response = reviewer.get("/admin/integrations/apicalllog/export/", {"outcome__exact": "error"})
    header, *rows = csv_of(response)
    assert header[:3] == ["id", "created_at", "definition_name"]
    assert [(row[header.index("status")], row[header.index("error_code")]) for row in rows] == [
        ("503", "upstream_error")
    ]


def test_a_search_for_letters_in_an_export_leaves_no_warning_for_the_next_page(reviewer):
    reviewer.get(EXPORT_URL, {"q": "letters"})
    content = reviewer.get("/admin/integrations/verification/").content.decode()
    assert "Search by phone number" not in content
