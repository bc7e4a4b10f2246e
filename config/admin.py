"""The admin site: its home page grouped as the product speaks of it, its login capped.

Django lists models by app (Integrations, Chat flows, Authentication…); staff
think in the guide's terms instead: the Developer Section where bots and APIs
are defined, the chat flows, and the logs they review. The home page and the
sidebar show those sections; each app's own page stays as Django builds it.
"""

import math
from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse

from integrations.throttles import (
    count_failed_staff_login,
    forget_failed_staff_logins,
    staff_login_wait,
)

# (title, models by label) in the order the home page shows them.
SECTIONS: list[tuple[str, list[str]]] = [
    (
        "Developer Section",
        [
            "integrations.ApiDefinition",
            "integrations.CustomAttribute",
            "integrations.Bot",
            "integrations.BotAPIKey",
        ],
    ),
    ("Chat flows", ["chatflows.Flow", "chatflows.Conversation"]),
    ("Logs", ["integrations.Verification", "integrations.ApiCallLog"]),
    ("Users and groups", ["auth.User", "auth.Group"]),
]


class StaffLoginForm(AdminAuthenticationForm):
    """The admin's login form, refusing a username after too many failed logins."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        wait = staff_login_wait(username)
        if wait:
            minutes = math.ceil(wait / 60)
            raise ValidationError(
                "Too many failed logins to this account. "
                f"Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                code="locked",
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            count_failed_staff_login(username)
            raise
        forget_failed_staff_logins(username)
        return cleaned


class ChatbotAuthAdminSite(admin.AdminSite):
    login_form = StaffLoginForm
    site_header = "chatbot-auth administration"
    site_title = "chatbot-auth"
    index_title = "Bots, APIs, flows and logs"
    # The site has no public pages: "/" leads back here.
    site_url = None

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        return sections(apps)


def sections(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The apps' models regrouped into SECTIONS; a model no section names keeps its app."""
    by_label = {model["model"]._meta.label: model for app in apps for model in app["models"]}
    grouped = []
    for title, labels in SECTIONS:
        models = [by_label.pop(label) for label in labels if label in by_label]
        models += _dashboard(models)
        if models:
            grouped.append(_section(title, models))
    for app in apps:
        rest = [model for model in app["models"] if model["model"]._meta.label in by_label]
        if rest:
            grouped.append({**app, "models": rest})
    return grouped


def _section(title: str, models: list[dict[str, Any]]) -> dict[str, Any]:
    first = models[0]
    return {
        "name": title,
        "app_label": first["model"]._meta.app_label,
        # A section has no page of its own: its title leads to its first list.
        "app_url": first["admin_url"],
        "has_module_perms": True,
        "models": models,
    }


def _dashboard(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verification dashboard, after the verification log, for whoever may view it."""
    if not any(model["object_name"] == "Verification" for model in models):
        return []
    return [
        {
            "model": None,
            "name": "Dashboard",
            "object_name": "Dashboard",
            "perms": {"add": False, "change": False, "delete": False, "view": True},
            "admin_url": reverse("admin:integrations_dashboard"),
            "add_url": None,
            "view_only": True,
        }
    ]
