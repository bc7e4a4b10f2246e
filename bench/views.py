"""The reference endpoints that `check` and `send` are measured against."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import delivery, sms

from .models import BenchCounter, BenchEvent

SEND_FLOOR_PHONE = "+14155550100"


def record_hit(key: str) -> BenchCounter:
    """Lock the counter `key`, count one hit on it and log an event, in one transaction.

    The same shape as a code check (lock one row by key, update it, insert
    one event row), so its cost is the floor set by the database's commit.
    """
    now = timezone.now()
    with transaction.atomic():
        counter = get_object_or_404(BenchCounter.objects.select_for_update(), key=key)
        counter.hits += 1
        counter.updated_at = now
        counter.save(update_fields=["hits", "updated_at"])
        BenchEvent.objects.create(counter=counter, kind="hit", created_at=now)
    return counter


class BareView(APIView):
    """A DRF endpoint with no database work: the ceiling of the stack."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class WriteFloorView(APIView):
    """Lock, update, insert: the floor of any correct check."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request: Request, key: str) -> Response:
        counter = record_hit(key)
        return Response({"key": counter.key, "hits": counter.hits})


class SendFloorView(APIView):
    """One message through the configured SMS backend and nothing else: the ceiling of a send.

    No authentication, no database: what is left is the provider's latency
    and the twilio client's own work, which every send pays.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        message_sid = sms.send_message(
            sms.SmsMessage(
                to=SEND_FLOOR_PHONE,
                body="Your verification code is 000000.",
                status_callback=delivery.status_callback_url(),
            )
        )
        return Response({"sid": message_sid})
