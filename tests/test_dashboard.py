"""The staff dashboard: figures per day and country, SVG charts, the SMS-pumping warning."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client

from tests.log_helpers import (
    DASHBOARD_URL,
    make_api_call,
    make_verification,
    reviewer_client,
    staff_client,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def empty_cache(db):
    # Settled days are cached; each test starts from its own rows only.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def reviewer(db) -> Client:
    return reviewer_client()


@pytest.fixture
def known_traffic(db) -> None:
    """Seven verifications in the window (two days, two countries), one before it."""
    today = NOW - timedelta(hours=1)
    for status, sends, delivery in [
        ("approved", 1, "delivered"),
        ("approved", 1, "delivered"),
        ("approved", 1, "undelivered"),
        ("expired", 2, "delivered"),
        ("failed", 0, ""),
    ]:
        make_verification(
            created_at=today, status=status, send_count=sends, delivery_status=delivery
        )
    five_days_ago = NOW - timedelta(days=5)
    for status, delivery in [("approved", "failed"), ("max_attempts_reached", "delivered")]:
        make_verification(
            "+447400123456",
            country="GB",
            created_at=five_days_ago,
            status=status,
            send_count=1,
            delivery_status=delivery,
        )
    make_verification(created_at=NOW - timedelta(days=40), status="approved", send_count=1)
    for outcome in ["success", "success", "success", "error"]:
        make_api_call(outcome=outcome, created_at=NOW - timedelta(days=2))
    make_api_call(outcome="error", created_at=NOW - timedelta(days=40))


def figures_of(client: Client):
    response = client.get(DASHBOARD_URL)
    assert response.status_code == 200
    return response.context["figures"]


def shown(response, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', response.content.decode())
    assert match, element_id
    return match.group(1)


def test_the_totals_match_the_known_traffic(reviewer, known_traffic):
    total = figures_of(reviewer).total
    assert (total.verifications, total.sends, total.approvals, total.failures) == (7, 7, 4, 1)


def test_conversion_is_approvals_over_verifications_whose_code_went_out(reviewer, known_traffic):
    response = reviewer.get(DASHBOARD_URL)
    assert shown(response, "total-conversion") == "66.7 %"  # 4 of 6 (one send failed)


def test_the_delivery_failure_rate_counts_final_reports(reviewer, known_traffic):
    response = reviewer.get(DASHBOARD_URL)
    assert shown(response, "delivery-failure-rate") == "33.3 %"  # 2 of 6 reports


def test_the_api_error_rate_covers_the_window_only(reviewer, known_traffic):
    response = reviewer.get(DASHBOARD_URL)
    assert shown(response, "api-error-rate") == "25.0 %"  # 1 of 4 calls


def test_each_of_the_thirty_days_has_its_figures(reviewer, known_traffic):
    days = figures_of(reviewer).days
    assert len(days) == 30
    assert (days[0].label, days[-1].label) == ("2026-02-14", "2026-03-15")
    by_day = {t.label: (t.verifications, t.sends, t.approvals, t.failures) for t in days}
    assert by_day["2026-03-15"] == (5, 5, 3, 1)
    assert by_day["2026-03-10"] == (2, 2, 1, 0)
    assert sum(t.verifications for t in days) == 7


def test_each_country_has_its_figures(reviewer, known_traffic):
    countries = {
        t.label: (t.verifications, t.sends, t.approvals, t.conversion_text)
        for t in figures_of(reviewer).countries
    }
    assert countries == {"US": (5, 5, 3, "75.0 %"), "GB": (2, 2, 1, "50.0 %")}


def test_the_figures_stay_the_same_when_settled_days_come_from_the_cache(reviewer, known_traffic):
    first = figures_of(reviewer)
    again = figures_of(reviewer)
    assert [(t.label, t.sends) for t in again.days] == [(t.label, t.sends) for t in first.days]
    assert again.total.approvals == first.total.approvals == 4


def test_the_page_has_three_server_drawn_svg_charts(reviewer, known_traffic):
    content = reviewer.get(DASHBOARD_URL).content.decode()
    charts = re.findall(r'<svg [^>]*class="dashboard-chart".*?</svg>', content, re.S)
    assert len(charts) == 3
    assert all("<script" not in chart for chart in charts)


def test_the_page_loads_nothing_from_elsewhere(reviewer, known_traffic):
    content = reviewer.get(DASHBOARD_URL).content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', content)
    assert sources
    assert all(not s.startswith(("http:", "https:", "//")) for s in sources)


def test_chart_labels_are_escaped(reviewer):
    make_verification(country="<b", created_at=NOW - timedelta(hours=1), send_count=1)
    content = reviewer.get(DASHBOARD_URL).content.decode()
    assert "&lt;b</text>" in content
    assert "><b</text>" not in content


# --- The SMS-pumping warning ----------------------------------------------------------------


def traffic(country: str, *, verifications: int, approved: int, hours_ago: float = 2) -> None:
    for n in range(verifications):
        make_verification(
            "+998901234567",
            country=country,
            created_at=NOW - timedelta(hours=hours_ago),
            send_count=1,
            status="approved" if n < approved else "expired",
        )


def pumping_countries(client: Client) -> list[str]:
    content = client.get(DASHBOARD_URL).content.decode()
    return re.findall(r'<li class="pumping-country">(\w+):', content)


def test_it_warns_of_a_country_under_20_percent_over_50_sends(reviewer):
    traffic("UZ", verifications=50, approved=5)
    traffic("US", verifications=50, approved=40)
    assert pumping_countries(reviewer) == ["UZ"]
    assert "Possible SMS pumping" in reviewer.get(DASHBOARD_URL).content.decode()


def test_it_does_not_warn_at_exactly_20_percent(reviewer):
    traffic("UZ", verifications=50, approved=10)
    assert pumping_countries(reviewer) == []


def test_it_does_not_warn_under_50_sends(reviewer):
    traffic("UZ", verifications=49, approved=0)
    assert pumping_countries(reviewer) == []


def test_it_looks_at_the_last_24_hours_only(reviewer):
    traffic("UZ", verifications=50, approved=0, hours_ago=25)
    assert pumping_countries(reviewer) == []


# --- Empty data and access ------------------------------------------------------------------


def test_an_empty_dashboard_says_there_is_no_data(reviewer):
    response = reviewer.get(DASHBOARD_URL)
    assert response.status_code == 200
    assert shown(response, "total-conversion") == "n/a"
    assert shown(response, "api-error-rate") == "n/a"
    assert "No verifications in the last 30 days." in response.content.decode()
    assert "Possible SMS pumping" not in response.content.decode()


def test_staff_without_the_log_permission_get_403(db):
    assert staff_client("no-perms").get(DASHBOARD_URL).status_code == 403


def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login_page(db):
    response = Client().get(DASHBOARD_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_log_list_links_to_the_dashboard_and_the_export(reviewer):
    content = reviewer.get("/admin/integrations/verification/?status__exact=approved").content
    assert DASHBOARD_URL.encode() in content
    assert b"/admin/integrations/verification/export/?status__exact=approved" in content


def test_a_day_without_a_code_sent_is_a_gap_in_the_conversion_chart_not_zero(
    reviewer, known_traffic
):
    content = reviewer.get(DASHBOARD_URL).content.decode()
    chart = re.search(r'<svg [^>]*aria-label="Conversion rate per day".*?</svg>', content, re.S)
    assert chart

    points = re.findall(r"<title>(\d\d-\d\d): ([\d.]+)% conversion</title>", chart.group(0))
    # Only the two days with codes sent have a rate; the other 28 have none to draw.
    assert points == [("03-10", "50"), ("03-15", "75")]
    # Two single days far apart: no line joins them across the empty days between.
    lines = re.findall(r'<polyline [^>]*points="([^"]*)"', chart.group(0))
    assert all(len(line.split()) == 1 for line in lines)
