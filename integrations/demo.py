"""The demo's Developer Section: the guide's attributes and its Send OTP / Verify OTP APIs."""

from django.conf import settings
from django.db import transaction

from .models import (
    ApiBodyParam,
    ApiDefinition,
    ApiHeader,
    ApiResponseMapping,
    CustomAttribute,
)

DEMO_ATTRIBUTES = [
    ("phone", CustomAttribute.Type.PHONE, "The phone number the person typed."),
    ("otp_id", CustomAttribute.Type.TEXT, "Send OTP's systemOtp: the verification's opaque id."),
    ("otp_code", CustomAttribute.Type.TEXT, "The code the person typed."),
    ("otp_verified", CustomAttribute.Type.BOOLEAN, "Whether Verify OTP accepted the code."),
    ("otp_status", CustomAttribute.Type.TEXT, "The verification's status after Verify OTP."),
    ("otp_error", CustomAttribute.Type.TEXT, "The error code of a refused call, for branching."),
]
# The guide's optional per-request Twilio credentials: secret, empty in the
# demo (empty rows are not sent), kept if an admin fills them in.
OPTIONAL_SECRETS = ["accountSID", "authToken", "fromNumber"]


@transaction.atomic
def install_demo_api_definitions(api_key: str) -> list[ApiDefinition]:
    """Create or reset the demo's attributes and two API definitions; safe to run again.

    `api_key` is the demo bot's key, sent as a secret Authorization header:
    the definitions call this same server at PUBLIC_BASE_URL.
    """
    for name, type_, description in DEMO_ATTRIBUTES:
        CustomAttribute.objects.update_or_create(
            name=name, defaults={"type": type_, "description": description}
        )
    base = settings.PUBLIC_BASE_URL
    send = _install(
        "Send OTP",
        f"{base}/integrations/custom-feature/send-otp-sms",
        "Sends a one-time code by SMS to {{phone}} and saves the verification id in otp_id.",
        api_key,
        body=[("toNumber", "{{phone}}")],
        optional_secrets=OPTIONAL_SECRETS,
        mappings=[("systemOtp", "otp_id"), ("code", "otp_error")],
    )
    verify = _install(
        "Verify OTP",
        f"{base}/integrations/custom-feature/verify-user-otp",
        "Checks the code in otp_code against the verification in otp_id.",
        api_key,
        body=[("systemOtp", "{{otp_id}}"), ("userOtp", "{{otp_code}}")],
        optional_secrets=[],
        mappings=[("verified", "otp_verified"), ("status", "otp_status"), ("code", "otp_error")],
    )
    return [send, verify]


def _install(
    name: str,
    url: str,
    description: str,
    api_key: str,
    *,
    body: list[tuple[str, str]],
    optional_secrets: list[str],
    mappings: list[tuple[str, str]],
) -> ApiDefinition:
    definition, _ = ApiDefinition.objects.update_or_create(
        name=name,
        defaults={
            "description": description,
            "method": ApiDefinition.Method.POST,
            "url": url,
            "body_format": ApiDefinition.BodyFormat.JSON,
            "timeout": 10,
            "retries": 0,
        },
    )
    kept = {
        row.key: row.secret_value
        for row in definition.body_params.filter(is_secret=True, key__in=optional_secrets)
    }
    definition.headers.all().delete()
    definition.body_params.all().delete()
    definition.response_mappings.all().delete()
    ApiHeader.objects.create(
        definition=definition,
        key="Authorization",
        is_secret=True,
        secret_value=f"Api-Key {api_key}",
    )
    rows = [(key, value, False) for key, value in body]
    rows += [(key, kept.get(key, ""), True) for key in optional_secrets]
    for position, (key, value, secret) in enumerate(rows):
        ApiBodyParam.objects.create(
            definition=definition,
            key=key,
            position=position,
            is_secret=secret,
            value="" if secret else value,
            secret_value=value if secret else "",
        )
    for position, (path, attribute) in enumerate(mappings):
        ApiResponseMapping.objects.create(
            definition=definition,
            path=path,
            attribute=CustomAttribute.objects.get(name=attribute),
            position=position,
        )
    return definition
