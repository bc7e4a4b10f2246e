"""Delivery reports from Twilio: did the message with the code reach the phone?

Twilio posts a report to the status callback each time a message changes
state (queued, sent, delivered, undelivered, failed). Reports may come twice
and out of order: each (message, status) is recorded once, and a late report
of an earlier state does not undo a later one.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from twilio.request_validator import RequestValidator

from .crypto import is_unreadable
from .exceptions import InvalidSignatureError
from .models import Verification, VerificationEvent

# How far along each status is; a report only moves `delivery_status` forward.
STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 4,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "partially_delivered": 4,
    "read": 5,
}


def status_callback_url() -> str:
    """Where Twilio posts the delivery reports of the messages we send."""
    return f"{settings.PUBLIC_BASE_URL}/integrations/twilio/status-callback"


@dataclass(frozen=True)
class DeliveryReport:
    message_sid: str
    status: str
    error_code: str = ""


def signing_token(*, message_sid: str, account_sid: str) -> str:
    """The auth token of the account that sent this message ("" when none is usable).

    A message sent with a bot's own Twilio account (the guide's accountSID and
    authToken) is reported signed with that account's token, which the
    verification keeps encrypted for this purpose; any other with the server's.
    """
    if message_sid and account_sid and account_sid != settings.TWILIO_ACCOUNT_SID:
        verification = _sender_of(message_sid, lock=False)
        if verification is not None and verification.provider_account_sid != account_sid:
            verification = None
        if verification is not None and is_unreadable(verification.provider_auth_token):
            # The token is stored but no configured key reads it: no signature
            # can be checked, so none is accepted (not even one made with the
            # server's token, which never signs this account's reports).
            return ""
        if verification is not None and verification.provider_auth_token:
            return verification.provider_auth_token
    return settings.TWILIO_AUTH_TOKEN


def check_twilio_signature(*, url: str, params: object, signature: str, token: str) -> None:
    """Raise InvalidSignatureError unless `signature` is Twilio's for this URL and body."""
    # An empty token would make the signature an HMAC anyone can compute.
    if not signature or not token:
        raise InvalidSignatureError()
    if not RequestValidator(token).validate(url, params, signature):
        raise InvalidSignatureError()


def record_delivery_report(report: DeliveryReport) -> str:
    """Apply a report to its verification; return what happened.

    `recorded`, `duplicate` (this status was already reported for this
    message) or `unknown_message` (no verification sent it). A report on a
    message that a resend replaced goes into the timeline but leaves
    `delivery_status`, which follows the message with the current code.
    """
    now = timezone.now()
    with transaction.atomic():
        # The row lock serialises concurrent copies of one report, so the
        # duplicate check below cannot be passed by both.
        verification = _sender_of(report.message_sid, lock=True)
        if verification is None:
            return "unknown_message"
        seen = verification.events.filter(
            kind=VerificationEvent.Kind.DELIVERY,
            detail__message_sid=report.message_sid,
            detail__status=report.status,
        ).exists()
        if seen:
            return "duplicate"
        current = STATUS_RANK.get(verification.delivery_status, -1)
        is_current_message = verification.current_message_sid() == report.message_sid
        if is_current_message and STATUS_RANK[report.status] >= current:
            verification.delivery_status = report.status
            verification.save(update_fields=["delivery_status", "updated_at"])
        detail = {"message_sid": report.message_sid, "status": report.status}
        if report.error_code:
            detail["error_code"] = report.error_code
        VerificationEvent.objects.create(
            verification=verification,
            kind=VerificationEvent.Kind.DELIVERY,
            created_at=now,
            detail=detail,
        )
    return "recorded"


def _sender_of(message_sid: str, *, lock: bool) -> Verification | None:
    """The verification that sent `message_sid`: its current message, or one a resend replaced.

    One query, joined through the event that holds the SID; with `lock`, only
    the verification's row is locked.
    """
    senders = Verification.objects.filter(events__message_sid=message_sid)
    if lock:
        senders = senders.select_for_update(of=("self",))
    return senders.first()
