"""The admin's home page and sidebar, grouped as the product's sections; the bot list."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chatflows.definitions import build_flow
from integrations.models import Bot, BotAPIKey
from tests.log_helpers import reviewer_client, staff_client

pytestmark = pytest.mark.django_db


def sections(client: Client, url: str = "/admin/") -> dict[str, list[str]]:
    response = client.get(url)
    assert response.status_code == 200
    return {
        app["name"]: [model["name"] for model in app["models"]]
        for app in response.context["app_list"]
    }


def test_the_home_page_lists_the_products_sections_in_order():
    client = staff_client("boss", superuser=True)

    assert sections(client) == {
        "Developer Section": ["API definitions", "Custom attributes", "Bots", "Bot API keys"],
        "Chat flows": ["Flows", "Conversations"],
        "Logs": ["Verifications", "API calls", "Dashboard"],
        "Users and groups": ["Users", "Groups"],
    }


def test_the_sidebar_shows_the_same_sections_on_every_page():
    client = staff_client("boss", superuser=True)

    html = client.get("/admin/integrations/apidefinition/").content.decode()

    sidebar = html[html.index('id="nav-sidebar"') :]
    titles = ["Developer Section", "Chat flows", "Logs", "Users and groups"]
    assert all(title in sidebar for title in titles)
    assert sorted(titles, key=sidebar.index) == titles
    assert 'href="/admin/integrations/verification/dashboard/"' in sidebar


def test_a_reviewer_sees_only_the_logs_and_their_dashboard():
    client = reviewer_client()

    assert sections(client) == {"Logs": ["Verifications", "API calls", "Dashboard"]}
    assert client.get("/admin/integrations/verification/dashboard/").status_code == 200


def test_staff_without_the_verification_log_get_no_dashboard_link():
    client = staff_client("editor", permissions=["integrations.view_apicalllog"])

    assert sections(client) == {"Logs": ["API calls"]}


def test_an_apps_own_page_still_lists_that_apps_models():
    client = staff_client("boss", superuser=True)

    (app,) = client.get("/admin/integrations/").context["app_list"]

    assert app["name"] == "Integrations"
    assert "Verifications" in [model["name"] for model in app["models"]]
    assert "Dashboard" not in [model["name"] for model in app["models"]]


def test_the_sites_root_leads_to_the_admin(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_the_admin_has_no_view_site_link_to_a_page_that_does_not_exist():
    client = staff_client("boss", superuser=True)

    assert "View site" not in client.get("/admin/").content.decode()


def test_the_bot_list_counts_each_bots_usable_keys_and_flows():
    bot = Bot.objects.create(name="Support bot")
    BotAPIKey.objects.create_key(bot=bot, name="live")
    BotAPIKey.objects.create_key(bot=bot, name="old", revoked=True)
    BotAPIKey.objects.create_key(bot=bot, name="lapsed", expiry_date=timezone.now() - timedelta(1))
    Bot.objects.create(name="Keyless bot")
    for slug in ("a", "b"):
        build_flow(bot, name=slug, slug=slug, steps=[{"kind": "end"}])
    client = staff_client("boss", superuser=True)

    rows = client.get("/admin/integrations/bot/").context["cl"].result_list

    counted = {bot.name: (bot.usable_key_count, bot.flow_count) for bot in rows}
    assert counted == {"Support bot": (1, 2), "Keyless bot": (0, 0)}
