"""The admin's login: a username is refused for a while after too many failed logins."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

LOGIN = "/admin/login/"
PASSWORD = "correct horse battery staple"
# On a window's boundary (900 s windows), so the lock lasts the whole window.
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def three_failures_lock(settings, time_machine) -> None:
    settings.STAFF_LOGIN_MAX_FAILURES = 3
    settings.STAFF_LOGIN_LOCK_SECONDS = 900
    time_machine.move_to(START, tick=False)


@pytest.fixture
def staff() -> None:
    for name in ("alice", "bob"):
        get_user_model().objects.create_user(name, password=PASSWORD, is_staff=True)


def log_in(username: str, password: str) -> tuple[bool, str]:
    """(logged in?, the page's text) for one attempt from a new browser."""
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": password})
    return "_auth_user_id" in client.session, response.content.decode()


def test_the_right_password_works(staff):
    assert log_in("alice", PASSWORD)[0]


def test_after_too_many_failures_even_the_right_password_is_refused(staff):
    failures = [log_in("alice", "guess")[0] for _ in range(3)]

    logged_in, page = log_in("alice", PASSWORD)

    assert failures == [False, False, False]
    assert not logged_in
    assert "Too many failed logins to this account. Try again in 15 minutes." in page


def test_the_lock_holds_one_username_only(staff):
    for _ in range(3):
        log_in("alice", "guess")

    assert log_in("bob", PASSWORD)[0]


def test_the_wait_is_told_in_whole_minutes(staff, time_machine):
    for _ in range(3):
        log_in("alice", "guess")
    time_machine.move_to(START + timedelta(seconds=850), tick=False)

    assert "Try again in 1 minute." in log_in("alice", PASSWORD)[1]


def test_the_lock_ends_with_its_window(staff, time_machine):
    for _ in range(3):
        log_in("alice", "guess")
    time_machine.move_to(START + timedelta(seconds=899), tick=False)
    assert not log_in("alice", PASSWORD)[0]

    time_machine.move_to(START + timedelta(seconds=900), tick=False)

    assert log_in("alice", PASSWORD)[0]


def test_a_successful_login_clears_the_count(staff):
    for _ in range(2):
        log_in("alice", "guess")
    assert log_in("alice", PASSWORD)[0]

    for _ in range(2):
        log_in("alice", "guess")

    assert log_in("alice", PASSWORD)[0]


def test_the_username_is_matched_whatever_its_case(staff):
    for name in ("alice", "ALICE", "Alice "):
        log_in(name, "guess")

    assert not log_in("alice", PASSWORD)[0]


def test_a_name_no_account_has_is_locked_alike_telling_nothing(staff):
    before = log_in("nobody", "guess")[1]
    for _ in range(2):
        log_in("nobody", "guess")

    after = log_in("nobody", "guess")[1]

    assert "Too many failed logins" not in before
    assert "Too many failed logins" in after


def test_no_cap_when_the_setting_is_zero(staff, settings):
    settings.STAFF_LOGIN_MAX_FAILURES = 0
    for _ in range(5):
        log_in("alice", "guess")

    assert log_in("alice", PASSWORD)[0]
