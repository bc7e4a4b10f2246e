"""Phone numbers at the edge: normalise to E.164, refuse what must not get a code, mask."""

import re

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


# Phone-number-looking runs in free text (logs, transcripts), each alternative
# kept narrow enough to leave dates, times, prices and ids alone:
# - international: `+` (or `%2B`, as in a logged query string) then 7 to 15
#   digits, single spaces, dots, dashes or brackets between them;
# - national with separators: `(415) 555-2671`, `020 7946 0958`, `415-555-2671`;
# - bare runs of 9 to 15 digits (`4155552671`, or E.164 without its `+`).
PHONE_IN_TEXT_RE = re.compile(
    r"(?<![\w.%+-])(?:"
    r"(?P<plus>\+|%2[Bb])\(?\d(?:[ ().-]{0,2}\d){6,14}"
    r"|\(?\d{2,5}\)?[ .-]{1,2}\d{2,4}[ .-]\d{3,4}"
    r"|\d{9,15}"
    r")(?![\w-]|\.\d)"
)
PHONE_CHARACTERS_RE = re.compile(r"\+?[\d\s().-]+")
MIN_NATIONAL_DIGITS = 9  # "26.11.2026" has 8: a date, not a phone


def _mask_run(digits: str, plus: str = "") -> str:
    if plus:
        return plus + mask_phone("+" + digits)[1:]
    if len(digits) >= 11:
        # Long enough to carry a country code, like E.164 without its `+`.
        return mask_phone("+" + digits)[1:]
    return "****" + digits[-4:]


def mask_phones_in_text(text: str, *, region: str | None = None) -> str:
    """`text` with every phone-number-looking part masked (see PHONE_IN_TEXT_RE).

    A text that is nothing but one number, as a person types it in a chat, is
    masked whole; with `region`, a national number is read as that country's
    and masked like its E.164 form.
    """
    stripped = text.strip()
    if PHONE_CHARACTERS_RE.fullmatch(stripped):
        digits = "".join(ch for ch in stripped if ch.isdigit())
        try:
            number = phonenumbers.parse(stripped, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_possible_number(number):
            return mask_phone(
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            )
        if MIN_NATIONAL_DIGITS <= len(digits) <= 15:
            return _mask_run(digits)

    def mask(match: re.Match[str]) -> str:
        run = "".join(ch for ch in match.group(0) if ch.isdigit())
        plus = match.group("plus") or ""
        if plus:
            # The digits of `%2B` are not the number's.
            run = "".join(ch for ch in match.group(0)[len(plus) :] if ch.isdigit())
        elif len(run) < MIN_NATIONAL_DIGITS:
            return match.group(0)
        return _mask_run(run, plus)

    return PHONE_IN_TEXT_RE.sub(mask, text)
