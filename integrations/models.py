"""Bots, their API keys, phone verifications with their events, and the
Developer Section (custom attributes, API definitions, the API-call log).

Limits that must hold under concurrency (attempts, sends per phone, the daily
cap) are counters on rows that are changed under a row lock or by a
conditional UPDATE, never read-modify-written from Python without a lock.
"""

import hashlib
import hmac
import re
import uuid
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
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
        # bot_id, not bot: the same SQL, without resolving a relation on every request.
        return self if bot is None else self.filter(bot_id=bot.pk)

    def with_message_sid(self) -> "VerificationQuerySet":
        """Each with `message_sid`: its current message's SID, as `current_message_sid()`."""
        sids = _message_sids(models.OuterRef("pk"), since=models.OuterRef("last_sent_at"))
        return self.annotate(message_sid=models.Subquery(sids[:1]))


def _message_sids(
    verification_id: uuid.UUID | models.OuterRef, *, since: datetime | models.OuterRef
) -> models.QuerySet:
    """SIDs of the messages sent for a verification since `since`, the latest first."""
    return (
        VerificationEvent.objects.filter(verification_id=verification_id, created_at__gte=since)
        .exclude(message_sid=None)
        .order_by("-id")
        .values_list("message_sid", flat=True)
    )


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
    # No index of its own: verif_bot (bot, -created_at) serves every lookup by bot.
    bot = models.ForeignKey(
        Bot,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="verifications",
        db_index=False,
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
    # Of the current message; its SID is on the event that recorded its sending.
    delivery_status = models.CharField(max_length=20, blank=True)
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
        # No index holds a column that a check changes (status, attempts,
        # code_hmac, updated_at): PostgreSQL then rewrites the row in place
        # on its page (a HOT update) without touching any of these indexes.
        # A status filter in the admin walks verif_created instead.
        indexes = [
            models.Index(fields=["-created_at"], name="verif_created"),
            models.Index(fields=["phone", "-created_at"], name="verif_phone"),
            models.Index(fields=["bot", "-created_at"], name="verif_bot"),
            models.Index(fields=["country", "-created_at"], name="verif_country"),
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

    def current_message_sid(self) -> str:
        """The SID of the message with the current code ("" until the provider took it).

        Only a message recorded since the last send was reserved counts: while
        a resend is with the provider, the message it replaces is no longer
        current, and its late delivery reports must not set `delivery_status`.
        """
        if self.last_sent_at is None:
            return ""
        return _message_sids(self.pk, since=self.last_sent_at).first() or ""


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
    # The provider's id of the message this event sent (`sent` and `resent`
    # only): the one place a message's SID is kept, so recording a send is a
    # single INSERT. A delivery report finds its verification through it.
    # NULL on other events, for the partial index below.
    message_sid = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["created_at"], name="verif_event_created"),
            # Partial, so the events without a message (a check's) stay out.
            # IS NOT NULL rather than <> '': SQLite uses such an index for
            # `message_sid = ?`, as PostgreSQL does.
            models.Index(
                fields=["message_sid"],
                condition=models.Q(message_sid__isnull=False),
                name="verif_event_message_sid",
            ),
        ]

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
    """Messages sent per UTC day, for SMS_DAILY_CAP, counted on SLOTS rows per day.

    A send adds one to a row of its day, which stays locked until the send's
    reservation commits. On one row, every send of every worker and node would
    queue there, each holding it through its commit; over several rows,
    concurrent sends mostly take different ones. Each slot allows its share of
    the cap, the shares adding up to the cap, so the day's total never passes it.
    """

    SLOTS = 8

    day = models.DateField()
    slot = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "slot"], name="daily_send_count_slot")
        ]

    def __str__(self) -> str:
        return f"{self.day} #{self.slot}: {self.count}"

    @classmethod
    def share(cls, slot: int, cap: int) -> int:
        """How many of the day's `cap` messages `slot` may count."""
        return cap // cls.SLOTS + (1 if slot < cap % cls.SLOTS else 0)

    @classmethod
    def take_one(cls, day: date, *, slot: int, cap: int) -> bool:
        """Count one message on `day` in `slot`; False when its share is reached or it has no row.

        A conditional UPDATE: the database refuses to go past the share even
        when many workers send at once. Written in SQL because every send runs
        it, and the ORM spent three times the statement's own CPU building it.
        """
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE integrations_dailysendcount SET count = count + 1"
                " WHERE day = %s AND slot = %s AND count < %s",
                [connection.ops.adapt_datefield_value(day), slot, cls.share(slot, cap)],
            )
            return cursor.rowcount > 0

    @classmethod
    def slots_with_room(cls, day: date, cap: int) -> list[int]:
        """The slots of `day` below their share (none before the day's rows exist)."""
        counts = cls.objects.filter(day=day).values_list("slot", "count")
        return [slot for slot, count in counts if count < cls.share(slot, cap)]


# --- Developer Section: custom attributes, API definitions, API-call log -------------

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_-]+)\s*\}\}")
# What may follow `{{` at all; anything else between braces is a typo worth refusing.
PLACEHOLDER_START_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
JSON_PATH_RE = re.compile(r"^[^.\s\[\]]+(\.[^.\s\[\]]+)*$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def placeholders_in(text: str) -> list[str]:
    """Attribute names used as `{{name}}` in `text`, in order of appearance."""
    return PLACEHOLDER_RE.findall(text)


def validate_placeholders(text: str) -> None:
    """Refuse malformed placeholders and placeholders naming unknown attributes."""
    for inner in PLACEHOLDER_START_RE.findall(text):
        if not re.fullmatch(r"\s*[A-Za-z0-9_-]+\s*", inner):
            raise ValidationError(f"{{{{{inner}}}}} is not a valid placeholder.")
    names = placeholders_in(text)
    if not names:
        return
    known = set(CustomAttribute.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        raise ValidationError(
            "Unknown attribute %(names)s: create it under Custom attributes first.",
            params={"names": ", ".join(f'"{name}"' for name in unknown)},
            code="unknown_attribute",
        )


def normalize_json_path(path: str) -> str:
    """`$.data.items[0].id` → `data.items.0.id`; the stored form is dotted."""
    path = path.strip()
    if path.startswith("$."):
        path = path[2:]
    return re.sub(r"\[(\d+)\]", r".\1", path)


class CustomAttribute(models.Model):
    """A named value of a conversation, filled by ask steps and API responses."""

    class Type(models.TextChoices):
        TEXT = "text"
        NUMBER = "number"
        BOOLEAN = "boolean"
        PHONE = "phone"

    name = models.SlugField(
        max_length=64,
        unique=True,
        help_text="Letters, digits, - and _; used as {{name}} in API definitions.",
    )
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.TEXT)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiDefinition(models.Model):
    """An outbound HTTP API a bot calls, as in the guide's Developer Section."""

    class Method(models.TextChoices):
        # Shown as HTTP writes them, not as "Get" and "Post".
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    class BodyFormat(models.TextChoices):
        JSON = "json", "JSON"
        FORM = "form", "form (application/x-www-form-urlencoded)"

    IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.POST)
    # Not a URLField: the path and query may hold {{attribute}} placeholders.
    url = models.CharField(
        "URL",
        max_length=2000,
        help_text="http(s)://host/path; placeholders are allowed in the path and query only.",
    )
    body_format = models.CharField(
        max_length=4, choices=BodyFormat.choices, default=BodyFormat.JSON
    )
    timeout = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="Seconds for the whole call (connecting takes at most 3 of them).",
    )
    retries = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(2)],
        help_text="Extra attempts on a connection error or a 503; only GET, PUT and DELETE.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API definition"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            validate_api_url(self.url)
        except ValidationError as exc:
            errors.setdefault("url", []).extend(exc.messages)
        if self.retries and self.method not in self.IDEMPOTENT_METHODS:
            errors.setdefault("retries", []).append(
                "Retries are only allowed for GET, PUT and DELETE: a repeated "
                f"{self.method} could act twice."
            )
        if errors:
            raise ValidationError(errors)

    def used_attributes(self) -> list[str]:
        """Names of the attributes its URL and rows use, in order, once each."""
        texts = [self.url]
        if self.pk:
            for rows in (self.query_params.all(), self.headers.all(), self.body_params.all()):
                texts.extend(row.value for row in rows if not row.is_secret)
        names: list[str] = []
        for text in texts:
            names.extend(placeholders_in(text))
        return list(dict.fromkeys(names))


def validate_api_url(url: str, *, check_attributes: bool = True) -> None:
    """An http(s) URL whose scheme, host and port are fixed text (no placeholders)."""
    url = url.strip()
    if not url:
        raise ValidationError("Enter a URL.")
    if any(ch in url for ch in "\r\n\t ") or any(ord(ch) < 32 for ch in url):
        raise ValidationError("The URL must not contain spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("The URL must start with http:// or https://.")
    if "{{" in parts.netloc or "}}" in parts.netloc:
        raise ValidationError("Placeholders are not allowed in the host or port, only in the path.")
    if "@" in parts.netloc:
        raise ValidationError("Credentials in the URL are not allowed; use a secret header.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValidationError("The URL's port is not valid.") from exc
    if not host:
        raise ValidationError("The URL has no host.")
    del port
    if parts.fragment:
        raise ValidationError("The URL must not have a #fragment.")
    if check_attributes:
        validate_placeholders(url)


class ApiRow(models.Model):
    """A key/value row of a definition; the value is text with placeholders, or a secret.

    A secret is stored encrypted in `secret_value` and sent as is (no
    placeholders); the admin never shows it, only its last four characters.
    A row with an empty value is not sent, so optional secrets can stay blank.
    """

    key = models.CharField(max_length=200)
    value = models.TextField(blank=True)
    is_secret = models.BooleanField("secret", default=False)
    secret_value = EncryptedTextField(blank=True, editable=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        if not self.key.strip():
            raise ValidationError({"key": "Enter a key."})
        if self.is_secret:
            self.value = ""
        else:
            self.secret_value = ""
            try:
                validate_placeholders(self.value)
            except ValidationError as exc:
                raise ValidationError({"value": exc.messages}) from exc

    @property
    def configured_value(self) -> str:
        return self.secret_value if self.is_secret else self.value


class ApiQueryParam(ApiRow):
    definition = models.ForeignKey(
        ApiDefinition, on_delete=models.CASCADE, related_name="query_params"
    )

    class Meta(ApiRow.Meta):
        verbose_name = "query parameter"


class ApiHeader(ApiRow):
    definition = models.ForeignKey(ApiDefinition, on_delete=models.CASCADE, related_name="headers")

    class Meta(ApiRow.Meta):
        verbose_name = "header"

    def clean(self) -> None:
        super().clean()
        if not HEADER_NAME_RE.match(self.key):
            raise ValidationError({"key": "A header name holds letters, digits and -_ only."})
        if any(ch in self.configured_value for ch in "\r\n\0"):
            raise ValidationError({"value": "A header value must not contain line breaks."})


class ApiBodyParam(ApiRow):
    definition = models.ForeignKey(
        ApiDefinition, on_delete=models.CASCADE, related_name="body_params"
    )

    class Meta(ApiRow.Meta):
        verbose_name = "body parameter"


class ApiResponseMapping(models.Model):
    """Saves one field of the response (or the HTTP status) into a custom attribute."""

    class Source(models.TextChoices):
        JSON = "json", "JSON path"
        STATUS = "status", "HTTP status"

    definition = models.ForeignKey(
        ApiDefinition, on_delete=models.CASCADE, related_name="response_mappings"
    )
    source = models.CharField(max_length=6, choices=Source.choices, default=Source.JSON)
    path = models.CharField(
        max_length=300, blank=True, help_text="e.g. data.items.0.id (empty for the HTTP status)"
    )
    attribute = models.ForeignKey(
        CustomAttribute, on_delete=models.PROTECT, related_name="response_mappings"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = "response mapping"

    def __str__(self) -> str:
        source = self.path if self.source == self.Source.JSON else "HTTP status"
        return f"{source} → {self.attribute_id and self.attribute.name}"

    def clean(self) -> None:
        if self.source == self.Source.STATUS:
            self.path = ""
            return
        self.path = normalize_json_path(self.path)
        if not JSON_PATH_RE.match(self.path):
            raise ValidationError(
                {"path": "Enter a JSON path such as data.items.0.id (keys separated by dots)."}
            )


class ApiCallLogQuerySet(models.QuerySet["ApiCallLog"]):
    def older_than(self, cutoff: datetime) -> "ApiCallLogQuerySet":
        return self.filter(created_at__lt=cutoff)


class ApiCallLog(models.Model):
    """One run of an API definition, with secrets masked and codes redacted."""

    class Origin(models.TextChoices):
        ADMIN_TEST = "admin_test", "Admin test"
        CONVERSATION = "conversation", "Conversation"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        ERROR = "error"

    definition = models.ForeignKey(
        ApiDefinition, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    # Kept so the row still says what ran after the definition is deleted.
    definition_name = models.CharField(max_length=100, blank=True)
    origin = models.CharField(max_length=12, choices=Origin.choices)
    # No foreign key: chatflows depends on integrations, never the other way.
    conversation_id = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=6)
    url = models.TextField(help_text="secrets masked")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=7, choices=Outcome.choices)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ApiCallLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Listed as "API calls" in the Logs section: "3 API calls", "Select API call to view".
        verbose_name = "API call"
        verbose_name_plural = "API calls"
        indexes = [
            models.Index(fields=["definition", "-created_at"], name="apicall_definition"),
            models.Index(fields=["outcome", "-created_at"], name="apicall_outcome"),
            models.Index(fields=["conversation_id"], name="apicall_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.definition_name} → {self.status or self.error_code}"
