"""The demo flow: the bot-platform guide's phone verification, built from ordinary steps.

Welcome; ask the phone; Send OTP; wait; ask the code; Verify OTP; "verified", or
"please re-enter" and ask again — three tries, written out one after the other
because a flow has no counters; an expired or exhausted code offers a new one.
"""

from typing import Any

from django.db import transaction

from integrations.models import Bot, CustomAttribute

from .definitions import FlowDataError, build_flow
from .models import Flow

DEMO_FLOW_SLUG = "verify-phone"
DEMO_FLOW_NAME = "Verify phone number"
SEND_OTP = "Send OTP"
VERIFY_OTP = "Verify OTP"
TRIES = 3
NEW_CODE = "Send a new code"
NO_THANKS = "No, thanks"
VERIFIED_TEXT = "Your number is verified. ✅"
WRONG_CODE_TEXT = "That code is not right, please re-enter it."
SEND_FAILED_TEXT = (
    "Sorry, we could not send a code to that number. Please check the number, "
    "or try again in a few minutes."
)
TOO_SOON_TEXT = (
    "We sent a code to this number moments ago. Please wait half a minute "
    "before asking for another one."
)
LOCKED_TEXT = (
    "Too many wrong codes were entered for this number, so it is locked for a "
    "while. Please try again later."
)


class DemoSetupError(Exception):
    """The Developer Section's demo (APIs and attributes) is not there yet."""


def demo_steps() -> list[dict[str, Any]]:
    """The steps, each with a `label` that `next`/`branch` refer to."""
    steps: list[dict[str, Any]] = [
        {"label": "welcome", "kind": "message",
         "text": "Hi! Let's verify your phone number with a one-time code."},
        {"label": "ask_phone", "kind": "ask", "expects": "phone", "attribute": "phone",
         "text": "What is your mobile number? Please include the country code, "
         "for example +1 415 555 2671."},
        {"label": "send", "kind": "api_call", "api": SEND_OTP, "branch": "send_failed"},
        {"label": "sent", "kind": "message",
         "text": "We are sending a code to {{phone}}. It may take a few seconds."},
        {"label": "wait", "kind": "delay", "seconds": 5},
    ]  # fmt: skip
    for attempt in range(1, TRIES + 1):
        last = attempt == TRIES
        steps += [
            {"label": f"ask_code_{attempt}", "kind": "ask", "expects": "code",
             "attribute": "otp_code",
             "text": "Please type the code from the SMS." if attempt == 1 else ""},
            {"label": f"verify_{attempt}", "kind": "api_call", "api": VERIFY_OTP,
             "branch": "verify_failed"},
            {"label": f"is_verified_{attempt}", "kind": "condition", "attribute": "otp_verified",
             "operator": "equals", "value": "true", "next": "verified"},
            {"label": f"is_closed_{attempt}", "kind": "condition", "attribute": "otp_status",
             "operator": "matches", "value": "^(expired|max_attempts_reached)$",
             "next": "offer_new_code"},
            {"label": f"wrong_{attempt}", "kind": "message",
             "text": WRONG_CODE_TEXT if not last
             else "That code is not right either, and that was the last try.",
             "next": "offer_new_code" if last else None},
        ]  # fmt: skip
        if not last:
            steps.append({"label": f"pause_{attempt}", "kind": "delay", "seconds": 2})
    steps += [
        {"label": "verified", "kind": "message", "text": VERIFIED_TEXT},
        {"label": "done", "kind": "end"},
        {"label": "offer_new_code", "kind": "ask", "expects": "choice",
         "attribute": "otp_new_code", "choices": f"{NEW_CODE}\n{NO_THANKS}",
         "text": "This code can no longer be used. Would you like a new one?"},
        {"label": "wants_new_code", "kind": "condition", "attribute": "otp_new_code",
         "operator": "equals", "value": NEW_CODE, "next": "send"},
        {"label": "goodbye", "kind": "message",
         "text": "All right. Come back any time to verify your number."},
        {"label": "end_goodbye", "kind": "end"},
        # Send OTP failed: its error `code` is in otp_error.
        {"label": "send_failed", "kind": "condition", "attribute": "otp_error",
         "operator": "equals", "value": "rate_limited", "next": "too_soon"},
        {"label": "is_locked", "kind": "condition", "attribute": "otp_error",
         "operator": "equals", "value": "phone_locked", "next": "locked"},
        {"label": "not_sent", "kind": "message", "text": SEND_FAILED_TEXT},
        {"label": "retry_phone", "kind": "goto", "next": "ask_phone"},
        {"label": "too_soon", "kind": "ask", "expects": "choice", "attribute": "otp_new_code",
         "choices": f"{NEW_CODE}\n{NO_THANKS}", "text": TOO_SOON_TEXT},
        {"label": "wants_code_after_wait", "kind": "condition", "attribute": "otp_new_code",
         "operator": "equals", "value": NEW_CODE, "next": "send"},
        {"label": "no_code_after_wait", "kind": "goto", "next": "goodbye"},
        {"label": "locked", "kind": "message", "text": LOCKED_TEXT},
        {"label": "end_locked", "kind": "end"},
        {"label": "verify_failed", "kind": "message",
         "text": "Sorry, we could not check your code just now.", "next": "offer_new_code"},
    ]  # fmt: skip
    return steps


@transaction.atomic
def create_demo_flow(bot: Bot) -> tuple[Flow, bool]:
    """The demo flow of `bot`, created unless it exists (then left as staff edited it)."""
    existing = Flow.objects.filter(bot=bot, slug=DEMO_FLOW_SLUG).first()
    if existing is not None:
        return existing, False
    CustomAttribute.objects.get_or_create(
        name="otp_new_code",
        defaults={"description": "The answer to “Would you like a new code?” in the demo flow."},
    )
    try:
        flow = build_flow(bot, name=DEMO_FLOW_NAME, slug=DEMO_FLOW_SLUG, steps=demo_steps())
    except FlowDataError as exc:
        raise DemoSetupError(str(exc)) from exc
    return flow, True
