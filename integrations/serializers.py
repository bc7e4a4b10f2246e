"""Request parsing and response shapes of the bot-facing OTP endpoints."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from . import otp
from .models import Channel, Verification
from .sms import ACCOUNT_SID_SHAPE


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error rather than ignored."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in sorted(unknown)}
            )
        return attrs


class TextField(serializers.CharField):
    """A CharField that also refuses control characters (DRF already refuses NUL).

    No phone, reference or credential holds one, and a line break or escape
    sequence in a value would end up in log lines and admin pages.
    """

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise serializers.ValidationError("Enter text without control characters.")
        return value


@extend_schema_field({"type": "string", "pattern": "^[0-9]{6,10}$", "example": "123456"})
class CodeField(serializers.CharField):
    """OTP_LENGTH ASCII digits; anything else is refused before any comparison."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if len(value) != settings.OTP_LENGTH or not (value.isascii() and value.isdigit()):
            raise serializers.ValidationError(f"Enter the {settings.OTP_LENGTH}-digit code.")
        return value


# --- Native API (snake_case) ------------------------------------------------------


class StartVerificationSerializer(StrictSerializer):
    to = TextField(max_length=40, help_text="The phone number, E.164 (+14155552671)")
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.SMS)
    user_ref = TextField(max_length=200, required=False, default="", allow_blank=True)


class CheckVerificationSerializer(StrictSerializer):
    code = CodeField(max_length=10)


class EmptySerializer(StrictSerializer):
    pass


class VerificationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    to = serializers.CharField(source="masked_phone")
    channel = serializers.CharField()
    status = serializers.SerializerMethodField()
    attempts_left = serializers.SerializerMethodField()
    send_count = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    resend_available_at = serializers.SerializerMethodField()
    delivery_status = serializers.CharField()
    created_at = serializers.DateTimeField()

    # A pending row past its TTL reads as expired even before a request
    # closes it, so the counters must say "closed" too, not "5 attempts left".
    def get_status(self, verification: Verification) -> str:
        return otp.current_status(verification)

    def get_attempts_left(self, verification: Verification) -> int:
        if otp.current_status(verification) != Verification.Status.PENDING:
            return 0
        return verification.attempts_left

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_resend_available_at(self, verification: Verification) -> str | None:
        moment = verification.resend_available_at
        if moment is None or otp.current_status(verification) != Verification.Status.PENDING:
            return None
        return serializers.DateTimeField().to_representation(moment)


# Every response renders through this one instance: making a serializer
# deep-copies its declared fields (a tenth of a millisecond for these ten,
# as much as the code check's own UPDATE), and rendering keeps no state on
# the instance, so threads can share it.
_verification_shape = VerificationSerializer()


def verification_data(verification: Verification) -> dict[str, Any]:
    """A verification as the native API shows it (VerificationSerializer's shape)."""
    return _verification_shape.to_representation(verification)


class CheckResultSerializer(VerificationSerializer):
    verified = serializers.BooleanField()


# --- The guide's endpoints (camelCase, extra fields ignored) ---------------------


class GuideSendSerializer(serializers.Serializer):
    toNumber = TextField(max_length=40)
    accountSID = TextField(max_length=64, required=False, allow_blank=True, default="")
    authToken = TextField(max_length=128, required=False, allow_blank=True, default="")
    fromNumber = TextField(max_length=40, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs["accountSID"]) != bool(attrs["authToken"]):
            raise serializers.ValidationError("Send accountSID and authToken together, or neither.")
        # Refused here, before a send is reserved, so a malformed SID costs nothing.
        if attrs["accountSID"] and not ACCOUNT_SID_SHAPE.match(attrs["accountSID"]):
            raise serializers.ValidationError({"accountSID": ["Not a Twilio account SID."]})
        return attrs


class GuideVerifySerializer(serializers.Serializer):
    systemOtp = TextField(max_length=64)
    userOtp = CodeField(max_length=10)


class GuideSendResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    systemOtp = serializers.CharField()
    verificationId = serializers.CharField()
    status = serializers.CharField()
    expiresIn = serializers.IntegerField()


class GuideVerifyResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    verified = serializers.BooleanField()
    status = serializers.CharField()
    attemptsLeft = serializers.IntegerField()


# --- Errors, as the API documents them ---------------------------------------------


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable; the response's description lists them."
    )
    detail = serializers.CharField(help_text="For people; its wording may change.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On `invalid_request`: the messages of each field at fault.",
    )
    provider_code = serializers.IntegerField(
        required=False, help_text="On `provider_error`: Twilio's own error code."
    )


class GuideErrorSerializer(ErrorSerializer):
    success = serializers.BooleanField(help_text="Always false.")
    message = serializers.CharField(help_text="The same text as `detail`.")


# What each status may answer, with its codes.
ERROR_CODES = {
    400: "`invalid_request` (malformed JSON, missing, unknown or mistyped fields; "
    "`errors` says which), `invalid_phone_number`, `country_not_allowed`",
    401: "`authentication_failed`: no API key, or a revoked or expired one",
    404: "`not_found`: no such object, or another bot's",
    409: "`verification_closed`, `conversation_finished`, `conversation_busy` or `flow_inactive`",
    413: "`invalid_request`: the body is larger than 64 KiB",
    415: "`unsupported_media_type`: send `application/json`",
    429: "`rate_limited` (a per-phone or per-bot limit) or `phone_locked` (too many wrong "
    "codes); Retry-After says when to try again",
    502: "`provider_error`: Twilio refused the message (`provider_code` says why)",
    503: "`provider_unavailable`, `daily_cap_reached` (until the next UTC day), "
    "`database_unavailable` or `cache_unavailable` (these two with Retry-After: 1)",
}


def error_responses(*statuses: int, guide: bool = False) -> dict[int, OpenApiResponse]:
    """The schema's error responses for `statuses` (the guide's endpoints have their own shape).

    Every operation may answer 401 and 503; one that takes a body also 400, 413 and 415.
    """
    shape = GuideErrorSerializer if guide else ErrorSerializer
    return {
        status: OpenApiResponse(shape, description=ERROR_CODES[status])
        for status in sorted({401, 503, *statuses})
    }


BODY_ERRORS = (400, 413, 415)
