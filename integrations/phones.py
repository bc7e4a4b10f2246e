"""Phone numbers at the edge: normalise to E.164, refuse what must not get a code, mask."""

import phonenumbers
from django.conf import settings
from phonenumbers import PhoneNumberType

from .exceptions import CountryNotAllowedError, InvalidPhoneNumberError

# Numbers that cost the sender money or reach no person's handset: an OTP
# service that texts them is an SMS-pumping target.
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

MAX_INPUT_LENGTH = 32
E164_MAX_LENGTH = 16  # "+" and at most 15 digits


def normalize_phone(raw: str, *, region: str | None = None) -> tuple[str, str]:
    """Return `(e164, country)` for a number a code may be sent to, or raise.

    `region` lets a number without a leading `+` be read as a national number
    of that country; without it, only international numbers are accepted.
    """
    text = raw.strip()
    if not text or len(text) > MAX_INPUT_LENGTH or "\x00" in text:
        raise InvalidPhoneNumberError()
    if any(ch.isalpha() for ch in text):
        # phonenumbers reads vanity numbers ("+1 800 FLOWERS") by turning
        # letters into keypad digits; a person's own phone is never typed
        # that way, so letters mean the input is not a phone number.
        raise InvalidPhoneNumberError()
    try:
        number = phonenumbers.parse(text, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError() from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumberError()
    kind = phonenumbers.number_type(number)
    if kind in REFUSED_TYPES:
        raise InvalidPhoneNumberError(
            f"Codes are not sent to {REFUSED_TYPES[kind]} numbers; use a mobile number."
        )
    country = phonenumbers.region_code_for_number(number) or ""
    if len(country) != 2:
        # Non-geographic numbers (region "001": satellite phones, international
        # networks such as +882/+883) belong to no country an allowlist could
        # name, cost a fortune per SMS, and are a favourite of SMS pumping.
        raise InvalidPhoneNumberError(
            "Codes are not sent to satellite or international-network numbers."
        )
    allowed = settings.OTP_ALLOWED_COUNTRIES
    if allowed and country not in allowed:
        raise CountryNotAllowedError()
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) > E164_MAX_LENGTH:
        # phonenumbers accepts some German fixed lines of 17 digits; E.164
        # (and every SMS provider) stops at 15, and so does our phone column.
        raise InvalidPhoneNumberError()
    return e164, country


def mask_phone(e164: str) -> str:
    """`+14155552671` → `+1415****2671`: enough to recognise, not enough to use.

    Always four stars, so the mask does not tell the number's length either.
    """
    if len(e164) <= 9:
        return e164[:3] + "****" + e164[-2:]
    return e164[:5] + "****" + e164[-4:]
