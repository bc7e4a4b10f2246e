"""Bots, their API keys, and phone verifications with their events.

Limits that must hold under concurrency (attempts, sends per phone, the daily
cap) are counters on rows that are changed under a row lock or by a
conditional UPDATE, never read-modify-written from Python without a lock.
"""

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

from .crypto import EncryptedTextField
from .phones import mask_phone


class Bot(models.Model):
    """A chatbot that calls the API with its own keys and sees only its own data."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BotAPIKey(AbstractAPIKey):
    """An API key of a bot; only a hash is stored, the key is shown once."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="api_keys")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "bot API key"
        verbose_name_plural = "bot API keys"


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"


class VerificationQuerySet(models.QuerySet["Verification"]):
    def for_bot(self, bot: Bot | None) -> "VerificationQuerySet":
        """A bot sees its own verifications; staff (no bot) see all."""
        return self if bot is None else self.filter(bot=bot)


class Verification(models.Model):
    """One attempt to prove that a person holds a phone number."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        EXPIRED = "expired"
        MAX_ATTEMPTS_REACHED = "max_attempts_reached"
        CANCELED = "canceled"
        FAILED = "failed"

    # The id is opaque and unguessable: it is what the guide's flow stores as
    # `systemOtp`, so it must not be enumerable.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot = models.ForeignKey(
        Bot, null=True, blank=True, on_delete=models.SET_NULL, related_name="verifications"
    )
    phone = models.CharField(max_length=16, help_text="E.164")
    country = models.CharField(max_length=2, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.SMS)
    user_ref = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    # HMAC-SHA256 of the current code, keyed with OTP_PEPPER and bound to this
    # verification's id; the code itself is never stored.
    code_hmac = models.CharField(max_length=64, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0, help_text="wrong codes entered")
    send_count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
    last_sent_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    delivery_status = models.CharField(max_length=20, blank=True)
    message_sid = models.CharField(max_length=64, blank=True)
    # The Twilio account a per-request send used (the guide's accountSID and
    # authToken), kept so a resend and the signature check of its delivery
    # callbacks use the same account; the token is encrypted at rest.
    provider_account_sid = models.CharField(max_length=64, blank=True)
    provider_auth_token = EncryptedTextField(blank=True)
    provider_from_number = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VerificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="verif_created"),
            models.Index(fields=["phone", "-created_at"], name="verif_phone"),
            models.Index(fields=["bot", "-created_at"], name="verif_bot"),
            models.Index(fields=["status", "-created_at"], name="verif_status"),
            models.Index(fields=["country", "-created_at"], name="verif_country"),
            models.Index(fields=["message_sid"], name="verif_message_sid"),
            models.Index(fields=["channel", "-created_at"], name="verif_channel"),
            models.Index(fields=["delivery_status", "-created_at"], name="verif_delivery"),
        ]
        permissions = [("view_full_phone", "Can view full phone numbers")]

    def __str__(self) -> str:
        return f"{self.masked_phone} ({self.status})"

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def attempts_left(self) -> int:
        if self.status != self.Status.PENDING:
            return 0
        return max(settings.OTP_MAX_CHECK_ATTEMPTS - self.attempts, 0)

    @property
    def resend_available_at(self) -> datetime | None:
        if self.status != self.Status.PENDING or self.last_sent_at is None:
            return None
        return self.last_sent_at + timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS)

    def hash_code(self, code: str) -> str:
        message = f"{self.pk}:{code}".encode()
        return hmac.new(settings.OTP_PEPPER.encode(), message, hashlib.sha256).hexdigest()

    def code_matches(self, code: str) -> bool:
        # Constant-time: the time taken says nothing about how much matched.
        return bool(self.code_hmac) and hmac.compare_digest(self.code_hmac, self.hash_code(code))

    def is_expired(self, now: datetime) -> bool:
        return now > self.expires_at


class VerificationEvent(models.Model):
    """A line in a verification's timeline."""

    class Kind(models.TextChoices):
        SENT = "sent"
        RESENT = "resent"
        SEND_FAILED = "send_failed", "send failed"
        CHECK_FAILED = "check_failed", "check failed"
        APPROVED = "approved"
        EXPIRED = "expired"
        MAX_ATTEMPTS = "max_attempts_reached", "max attempts reached"
        LOCKED = "locked", "phone locked"
        CANCELED = "canceled"
        DELIVERY = "delivery", "delivery update"

    verification = models.ForeignKey(Verification, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["created_at"], name="verif_event_created")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class PhoneState(models.Model):
    """Per-phone limits that outlive any one verification.

    The row is locked (SELECT … FOR UPDATE) while a send is reserved or a
    failure counted, so concurrent requests for one number queue here.
    """

    phone = models.CharField(max_length=16, primary_key=True)
    # Times of recent sends, oldest first, trimmed to OTP_SEND_WINDOW_SECONDS:
    # a sliding window that needs no extra table.
    recent_sends = models.JSONField(default=list)
    consecutive_failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return mask_phone(self.phone)

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


class DailySendCount(models.Model):
    """Messages sent per UTC day, for SMS_DAILY_CAP (one row per day)."""

    day = models.DateField(primary_key=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.count}"
