"""Masking secrets and phone numbers, and redacting anything that looks like a one-time code.

Used for everything an API call leaves behind (the API-call log, the admin's
Test page): a code or a secret must never be stored or shown in clear, and a
phone number only masked.
"""

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from .crypto import mask_secret
from .phones import mask_phones_in_text

REDACTED = "[redacted]"

# Keys whose values are codes in the APIs we talk to (the guide's `userOtp`,
# Twilio Verify's `Code`, ...), compared lower-case without `_` and `-`.
# `systemOtp` is the guide's opaque verification id, not a code.
CODE_KEYS = frozenset(
    {
        "otp",
        "userotp",
        "otpcode",
        "code",
        "pin",
        "passcode",
        "password",
        "verificationcode",
        "smscode",
        "usercode",
        "onetimecode",
        "onetimepassword",
    }
)
NOT_CODE_KEYS = frozenset({"systemotp"})

# A run of 4 to 10 digits standing alone (not part of a longer number, a
# phone number, a UUID, a date, a port or a masked secret's last four), the
# shape of every code we send.
DIGIT_RUN_RE = re.compile(r"(?<![\w+:•-])\d{4,10}(?![\w-])")
_KEY_ALTERNATION = "|".join(
    sorted({"otp", "userOtp", "user_otp", "otp_code", "code", "pin", "passcode", "password"})
)
FORM_PAIR_RE = re.compile(rf"(?i)(?<![\w])((?:{_KEY_ALTERNATION}))=([^&\s]*)")
JSON_PAIR_RE = re.compile(rf'(?i)"((?:{_KEY_ALTERNATION}))"\s*:\s*("(?:[^"\\]|\\.)*"|[\w.+-]+)')


def is_code_key(key: object) -> bool:
    normalized = re.sub(r"[-_\s]", "", str(key)).lower()
    if normalized in NOT_CODE_KEYS:
        return False
    return normalized in CODE_KEYS or normalized.endswith("otp")


def _looks_like_code_value(value: object) -> bool:
    # Keep words such as an error code ("invalid_phone_number") readable; a
    # value holding digits could be a code.
    if isinstance(value, bool) or value is None:
        return False
    return any(ch.isdigit() for ch in str(value))


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret (as is, or percent-encoded) with its masked form."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        masked = mask_secret(secret)
        text = text.replace(secret, masked)
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, masked)
    return text


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secrets, then redact code-like `key=value`, `"key": value` and digit runs."""
    text = mask_secrets(text, secrets)

    def form_pair(match: re.Match[str]) -> str:
        if not _looks_like_code_value(match.group(2)):
            return match.group(0)
        return f"{match.group(1)}={REDACTED}"

    def json_pair(match: re.Match[str]) -> str:
        if not _looks_like_code_value(match.group(2)):
            return match.group(0)
        return f'"{match.group(1)}": "{REDACTED}"'

    text = FORM_PAIR_RE.sub(form_pair, text)
    text = JSON_PAIR_RE.sub(json_pair, text)
    text = DIGIT_RUN_RE.sub(REDACTED, text)
    # Last, so a masked number's visible digits are not taken for a code. The
    # call log is for debugging a definition: no one needs the full number.
    return mask_phones_in_text(text)


def redact_data(data: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of parsed JSON with secrets masked and code-like values redacted."""
    secrets = list(secrets)
    if isinstance(data, dict):
        return {
            key: REDACTED
            if is_code_key(key) and _looks_like_code_value(value) and not isinstance(value, dict)
            else redact_data(value, secrets)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact_data(item, secrets) for item in data]
    if isinstance(data, str):
        return redact_text(data, secrets)
    if isinstance(data, int) and not isinstance(data, bool) and 1000 <= abs(data) < 10**10:
        return REDACTED
    return data
