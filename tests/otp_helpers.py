"""Small helpers shared by the OTP service's tests: calls to the API and phone numbers."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType
from rest_framework.test import APIClient

from integrations.sms import LocmemBackend
from tests.conftest import code_in
from tests.fake_twilio import CODE_IN_BODY, FakeTwilio

US_PHONE = "+14155552671"
US_PHONE_2 = "+14155552672"
US_PHONE_3 = "+14155552673"
GB_MOBILE = "+447400123456"

GUIDE_SEND = "/integrations/custom-feature/send-otp-sms"
GUIDE_VERIFY = "/integrations/custom-feature/verify-user-otp"
VERIFICATIONS = "/api/v1/verifications"


def example_number(region: str, kind: PhoneNumberType) -> str:
    """A real, valid number of `kind` in `region` (E.164), from phonenumbers' metadata."""
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None and phonenumbers.number_type(number) == kind
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def start(api: APIClient, to: str = US_PHONE) -> Any:
    return api.post(VERIFICATIONS, {"to": to}, format="json")


def check(api: APIClient, verification_id: str, code: str) -> Any:
    return api.post(f"{VERIFICATIONS}/{verification_id}/check", {"code": code}, format="json")


def resend(api: APIClient, verification_id: str) -> Any:
    return api.post(f"{VERIFICATIONS}/{verification_id}/resend", format="json")


def cancel(api: APIClient, verification_id: str) -> Any:
    return api.post(f"{VERIFICATIONS}/{verification_id}/cancel", format="json")


def wrong_code_for(code: str) -> str:
    """A code of the same length that differs from `code` in every digit."""
    return "".join(str((int(ch) + 1) % 10) for ch in code)


@dataclass
class Inbox:
    """What reached the SMS provider: the locmem outbox or the fake Twilio."""

    fake: FakeTwilio | None = None

    def count(self) -> int:
        """Messages (or, on the fake Twilio, requests of any outcome) the provider got."""
        if self.fake is not None:
            return len(self.fake.requests)
        return len(LocmemBackend.outbox)

    def last_code_for(self, phone: str) -> str:
        if self.fake is not None:
            return self.fake.last_code_for(phone)
        messages = [m for m in LocmemBackend.outbox if m.to == phone]
        assert messages, f"no message was sent to {phone}"
        return code_in(messages[-1])

    def all_codes(self) -> list[str]:
        if self.fake is not None:
            found = (CODE_IN_BODY.search(m.body) for m in self.fake.messages)
            return [match.group(1) for match in found if match is not None]
        return [code_in(m) for m in LocmemBackend.outbox]


def run_with_settings(code: str, **environment: str) -> subprocess.CompletedProcess:
    """Run `code` in a new Python with the project's settings and `environment` only.

    No `.env` is read, and no DATABASE_* variable of this process gets through.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("DATABASE_")}
    env.update(ENV_FILE="", DJANGO_SETTINGS_MODULE="config.settings", DEBUG="True")
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )


def startup_failure(**environment: str) -> str:
    """What Django printed failing to start with `environment` set (it must fail)."""
    result = run_with_settings("import django; django.setup()", **environment)
    assert result.returncode != 0, "Django started"
    return result.stderr
