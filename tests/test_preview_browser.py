"""The chat preview in a real Chromium: staff run the demo flow on a phone-sized screen."""

import os
import shutil
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from chatflows import demo
from chatflows.models import Flow
from integrations.management.commands.setup_demo import DEMO_BOT
from tests.conftest import code_in

PHONE = "+14155552671"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def find_chromium() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture
def page(preview_url, monkeypatch) -> Iterator:
    # Depends on preview_url so the database work is done before the browser's
    # event loop starts in this thread (Django would open a second connection in
    # the loop's context and never close it), and so the browser closes before
    # the live server stops.
    executable = find_chromium()
    if executable is None:
        pytest.skip("No Chromium found (install Debian's chromium package or set CHROMIUM_PATH)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing"
    )
    # Playwright's sync API runs an event loop in this thread, and Django
    # refuses any database work beside a running loop (the test body runs there).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        # Long enough for the demo's 5-second delay, which the page really waits out.
        context.set_default_timeout(20_000)
        sync_api.expect.set_options(timeout=20_000)
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def preview_url(live_server, settings) -> str:
    settings.PUBLIC_BASE_URL = live_server.url
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    call_command("setup_demo", stdout=StringIO())
    call_command("setup_demo_flow", stdout=StringIO())
    get_user_model().objects.create_user("reviewer", password="a-long-test-password", is_staff=True)
    flow = Flow.objects.get(bot__name=DEMO_BOT, slug=demo.DEMO_FLOW_SLUG)
    return f"{live_server.url}/flows/{flow.pk}/preview"


def log_in_and_open(page, url: str) -> None:
    page.goto(url)  # not logged in: the admin's login page, coming back here after
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    page.wait_for_url(url)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def send(page, text: str) -> None:
    page.fill("#answer", text)
    page.click("#composer button")


def test_staff_verify_a_number_in_the_preview(page, preview_url, outbox):
    from playwright.sync_api import expect

    log_in_and_open(page, preview_url)
    answer = page.locator("#answer")
    expect(page.locator("#log .bubble.bot").first).to_contain_text("verify your phone number")
    expect(answer).to_have_attribute("type", "tel")
    expect(page.locator("#status")).to_have_text("Waiting for a phone number")

    send(page, PHONE)
    expect(page.locator("#typing")).to_be_visible()
    expect(answer).to_have_attribute("autocomplete", "one-time-code")
    expect(answer).to_have_attribute("inputmode", "numeric")
    expect(answer).to_be_enabled()
    expect(page.locator("#attributes")).to_contain_text(PHONE)

    send(page, code_in(outbox[0]))
    expect(page.locator("#log .bubble.bot").last).to_have_text(demo.VERIFIED_TEXT)
    expect(page.locator("#ended")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Finished")
    expect(page.locator("#attributes")).to_contain_text("otp_verified")
    screenshot(page, "preview-verified")


def test_staff_see_a_wrong_code_asked_again_in_the_preview(page, preview_url, outbox):
    from playwright.sync_api import expect

    log_in_and_open(page, preview_url)
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("type", "tel")
    send(page, PHONE)
    expect(answer).to_have_attribute("autocomplete", "one-time-code")
    expect(answer).to_be_enabled()

    code = code_in(outbox[0])
    send(page, "0" * len(code) if code != "0" * len(code) else "1" * len(code))
    expect(page.locator("#log .bubble.bot").last).to_have_text(demo.WRONG_CODE_TEXT)
    expect(page.locator("#typing")).to_be_visible()
    expect(answer).to_be_enabled()
    screenshot(page, "preview-wrong-code")

    send(page, code)
    expect(page.locator("#log .bubble.bot").last).to_have_text(demo.VERIFIED_TEXT)


def test_an_invalid_phone_is_asked_again_in_the_preview(page, preview_url):
    from playwright.sync_api import expect

    log_in_and_open(page, preview_url)
    expect(page.locator("#answer")).to_be_enabled()
    send(page, "12")
    expect(page.locator("#log .bubble.bot").last).to_contain_text("country code")
    expect(page.locator("#answer")).to_have_attribute("type", "tel")
