"""Runs conversations: load and lock a conversation, run the engine, save what it gives.

Messages to one conversation are handled one after the other. The obvious way —
hold `SELECT … FOR UPDATE` for the whole run — does not work here: API-call
steps make HTTP requests, often to this very server (the demo's Send OTP and
Verify OTP), and on SQLite an open write transaction locks the whole database,
so the request we wait for could never write its verification. So the row lock
is held only to take and to give back a short *lease* (`busy_until`): a second
message waits while the lease is held, and a lease left by a crashed worker
runs out by itself.
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations import executor
from integrations.models import ApiDefinition

from . import engine
from .exceptions import ConversationBusyError, ConversationFinishedError, FlowInactiveError
from .models import Conversation, Flow, TranscriptEntry

logger = logging.getLogger(__name__)

# Longer than any run should take: a few API calls of at most 30 s each.
LEASE_SECONDS = 120
# How long a second message waits for the first before it is refused.
WAIT_SECONDS = 40
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class _Unavailable:
    """The outcome of an API step whose definition was deleted since the flow was loaded."""

    ok: bool = False
    saved: dict[str, Any] = field(default_factory=dict)


def start_conversation(
    flow: Flow,
    *,
    user_ref: str = "",
    attributes: Mapping[str, Any] | None = None,
    by_staff: bool = False,
) -> Conversation:
    """Create a conversation of `flow` and run it until it needs input or ends.

    Staff may run an inactive flow, to preview a flow before switching it on.
    """
    if not flow.active and not by_staff:
        raise FlowInactiveError()
    initial = dict(attributes or {})
    # Created already leased: the first run may call APIs and nothing may
    # slip in before it is saved.
    conversation = Conversation.objects.create(
        flow=flow,
        bot=flow.bot,
        user_ref=user_ref,
        attributes=initial,
        busy_until=timezone.now() + timedelta(seconds=LEASE_SECONDS),
    )
    try:
        turn = engine.start(
            flow.definition(), initial, call_api=_api_caller(conversation), options=_options()
        )
    except BaseException:
        _release(conversation)
        raise
    return _save(conversation, turn)


def post_message(conversation: Conversation, text: str) -> Conversation:
    """Give the user's `text` to the conversation and run it until it needs input or ends."""
    conversation = _acquire(conversation)
    try:
        turn = engine.submit(
            conversation.flow.definition(),
            conversation.state(),
            text,
            call_api=_api_caller(conversation),
            options=_options(),
        )
    except BaseException:
        _release(conversation)
        raise
    return _save(conversation, turn)


def _acquire(conversation: Conversation) -> Conversation:
    """Take the conversation's lease, waiting while another message holds it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with transaction.atomic():
            locked = (
                Conversation.objects.select_for_update(of=("self",))
                .select_related("flow")
                .get(pk=conversation.pk)
            )
            if locked.is_finished:
                raise ConversationFinishedError()
            now = timezone.now()
            if not locked.is_busy(now):
                locked.busy_until = now + timedelta(seconds=LEASE_SECONDS)
                locked.save(update_fields=["busy_until", "updated_at"])
                return locked
        if time.monotonic() >= deadline:
            raise ConversationBusyError(retry_after=1)
        time.sleep(POLL_SECONDS)


def _save(conversation: Conversation, turn: engine.Turn) -> Conversation:
    """Store the turn's state and transcript and give the lease back, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        locked.apply(turn)
        locked.busy_until = None
        locked.save()
        TranscriptEntry.objects.bulk_create(TranscriptEntry.entries_for(locked, turn, now))
    if turn.error:
        logger.warning("Conversation %s stopped with a flow error: %s", locked.pk, turn.error)
    return Conversation.objects.select_related("current_step", "flow").get(pk=locked.pk)


def _release(conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(busy_until=None)


def _api_caller(conversation: Conversation) -> engine.CallApi:
    def call(step: engine.StepDef, attributes: Mapping[str, Any]) -> engine.ApiOutcome:
        definition = ApiDefinition.objects.filter(pk=step.api).first() if step.api else None
        if definition is None:
            logger.warning("Conversation %s: API definition %s is gone", conversation.pk, step.api)
            return _Unavailable()
        return executor.call_api(
            definition, attributes, origin="conversation", conversation_id=str(conversation.pk)
        )

    return call


def _options() -> engine.Options:
    return engine.Options(
        otp_length=settings.OTP_LENGTH, phone_region=settings.PHONE_DEFAULT_REGION
    )
