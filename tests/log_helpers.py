"""Helpers for the staff-log tests: log rows, and admin clients for each kind of staff."""

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from integrations.models import ApiCallLog, Verification, VerificationEvent

VERIFICATIONS_URL = "/admin/integrations/verification/"
EXPORT_URL = VERIFICATIONS_URL + "export/"
DASHBOARD_URL = VERIFICATIONS_URL + "dashboard/"


def make_verification(
    phone: str = "+14155552671",
    *,
    created_at: datetime | None = None,
    country: str = "US",
    message_sid: str = "",
    **fields: Any,
) -> Verification:
    """A verification; with `message_sid`, sent as that message (its `sent` event holds the SID)."""
    created_at = created_at or timezone.now()
    if message_sid:
        fields.setdefault("last_sent_at", created_at)
    verification = Verification.objects.create(
        phone=phone,
        country=country,
        created_at=created_at,
        expires_at=created_at + timedelta(minutes=5),
        **fields,
    )
    if message_sid:
        VerificationEvent.objects.create(
            verification=verification,
            kind=VerificationEvent.Kind.SENT,
            created_at=created_at,
            message_sid=message_sid,
        )
    return verification


def make_event(verification: Verification, kind: str, **detail: Any) -> VerificationEvent:
    return VerificationEvent.objects.create(verification=verification, kind=kind, detail=detail)


def make_api_call(*, outcome: str = "success", created_at: datetime | None = None, **fields: Any):
    fields.setdefault("status", 200 if outcome == "success" else 500)
    return ApiCallLog.objects.create(
        origin=ApiCallLog.Origin.CONVERSATION,
        method="POST",
        url="https://api.example.com/otp",
        outcome=outcome,
        created_at=created_at or timezone.now(),
        **fields,
    )


def staff_client(username: str, *, superuser: bool = False, permissions: list[str] = ()) -> Client:
    user = get_user_model().objects.create_user(
        username=username, password="x", is_staff=True, is_superuser=superuser
    )
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def reviewer_client(username: str = "reviewer", *, full_phones: bool = False) -> Client:
    """A staff member in the "log reviewer" group, made by its own command."""
    call_command("create_log_reviewer_group", verbosity=0)
    client = staff_client(
        username, permissions=["integrations.view_full_phone"] if full_phones else []
    )
    user = get_user_model().objects.get(username=username)
    user.groups.add(Group.objects.get(name="log reviewer"))
    return client


def results(response: Any) -> list[Verification]:
    """The rows an admin list page shows."""
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def csv_of(response: Any) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))
