"""Chat flows edited in the admin, and the conversations bots run through them.

The rules of a flow live in `engine.py`; these models store a flow's steps and a
conversation's state, and convert them to and from the engine's dataclasses.
"""

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from integrations.models import ApiDefinition, Bot, CustomAttribute
from integrations.phones import mask_phones_in_text

from . import engine


class FlowQuerySet(models.QuerySet["Flow"]):
    def for_bot(self, bot: Bot | None) -> "FlowQuerySet":
        """A bot sees its own flows; staff (no bot) see all."""
        return self if bot is None else self.filter(bot=bot)


class Flow(models.Model):
    """A conversation script of a bot: steps run in order unless a step says otherwise."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    active = models.BooleanField(
        default=True, help_text="Only active flows can start new conversations."
    )
    first_step = models.ForeignKey(
        "Step",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the first step in order.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FlowQuerySet.as_manager()

    class Meta:
        ordering = ["bot__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "slug"], name="flow_unique_slug_per_bot")
        ]

    def __str__(self) -> str:
        return self.name

    def definition(self) -> engine.FlowDef:
        """The flow as the engine runs it, read in one query."""
        steps = self.steps.select_related("attribute").order_by("position", "id")
        return engine.FlowDef(
            steps=tuple(step.as_step_def() for step in steps), first=self.first_step_id
        )

    @transaction.atomic
    def duplicate(self) -> "Flow":
        """A copy with copies of every step, its targets pointing at the copies; inactive."""
        slug = self.slug[:90] + "-copy"
        while Flow.objects.filter(bot=self.bot, slug=slug).exists():
            slug = slug[:95] + "-" + uuid.uuid4().hex[:4]
        copy = Flow.objects.create(
            bot=self.bot, name=f"{self.name} (copy)"[:100], slug=slug, active=False
        )
        originals = list(self.steps.order_by("position", "id"))
        copies: dict[int | None, Step] = {}
        for step in originals:
            copies[step.pk] = Step.objects.create(
                flow=copy,
                **{name: getattr(step, name) for name in Step.COPIED_FIELDS},
            )
        for step in originals:
            new = copies[step.pk]
            new.next_step = copies.get(step.next_step_id)
            new.branch_step = copies.get(step.branch_step_id)
            new.save(update_fields=["next_step", "branch_step"])
        copy.first_step = copies.get(self.first_step_id)
        copy.save(update_fields=["first_step"])
        return copy


class Step(models.Model):
    """One step of a flow; which fields matter depends on its kind."""

    class Kind(models.TextChoices):
        MESSAGE = engine.MESSAGE, "message"
        ASK = engine.ASK, "ask"
        API_CALL = engine.API_CALL, "API call"
        DELAY = engine.DELAY, "delay"
        CONDITION = engine.CONDITION, "condition"
        GOTO = engine.GOTO, "go to"
        END = engine.END, "end"

    class AskKind(models.TextChoices):
        PHONE = engine.PHONE, "phone number"
        CODE = engine.CODE, "one-time code"
        TEXT = engine.TEXT, "text"
        CHOICE = engine.CHOICE, "choice"

    class Operator(models.TextChoices):
        EQUALS = engine.EQUALS, "equals"
        NOT_EQUALS = engine.NOT_EQUALS, "not equals"
        IS_SET = engine.IS_SET, "is set"
        IS_EMPTY = engine.IS_EMPTY, "is empty"
        CONTAINS = engine.CONTAINS, "contains"
        GREATER_THAN = engine.GREATER_THAN, "greater than"
        LESS_THAN = engine.LESS_THAN, "less than"
        MATCHES = engine.MATCHES, "matches (regular expression)"

    COPIED_FIELDS = (
        "position",
        "kind",
        "text",
        "ask_kind",
        "attribute",
        "choices",
        "api",
        "delay_seconds",
        "operator",
        "value",
    )

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MESSAGE)
    text = models.TextField(
        blank=True, help_text="Message: what the bot says. Ask: the question. {{attribute}} works."
    )
    ask_kind = models.CharField(
        "expects", max_length=10, choices=AskKind.choices, blank=True, help_text="Ask steps."
    )
    attribute = models.ForeignKey(
        CustomAttribute,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Ask: where the answer is saved. Condition: what is tested.",
    )
    choices = models.TextField(blank=True, help_text="Choice asks: one option per line.")
    api = models.ForeignKey(
        ApiDefinition,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="API",
        help_text="API call steps.",
    )
    delay_seconds = models.PositiveIntegerField(default=0, help_text="Delay steps.")
    operator = models.CharField(max_length=14, choices=Operator.choices, blank=True)
    value = models.CharField(max_length=500, blank=True, help_text="Condition: compared with.")
    next_step = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the following step. Condition: where to go when true. Go to: target.",
    )
    branch_step = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="else / on error",
        help_text="Condition: where to go when false (empty: the following step). "
        "API call: where to go on error.",
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_kind_display()}" + (
            f": {self.summary}" if self.summary else ""
        )

    @property
    def summary(self) -> str:
        if self.kind in (self.Kind.MESSAGE, self.Kind.ASK):
            return self.text[:40]
        if self.kind == self.Kind.API_CALL and self.api is not None:
            return self.api.name
        if self.kind == self.Kind.CONDITION and self.attribute is not None:
            return f"{self.attribute.name} {self.get_operator_display()} {self.value}".strip()
        if self.kind == self.Kind.DELAY:
            return f"{self.delay_seconds} s"
        return ""

    def as_step_def(self) -> engine.StepDef:
        return engine.StepDef(
            id=self.pk,
            kind=self.kind,
            text=self.text,
            ask_kind=self.ask_kind,
            attribute=self.attribute.name if self.attribute is not None else "",
            choices=tuple(line.strip() for line in self.choices.splitlines() if line.strip()),
            api=self.api_id,
            seconds=self.delay_seconds,
            operator=self.operator,
            value=self.value,
            next=self.next_step_id,
            branch=self.branch_step_id,
            label=f"Step {self.position} ({self.get_kind_display()})",
        )

    def clean(self) -> None:
        # The engine's own rules, so the admin refuses what the engine cannot run.
        problems = engine.step_problems(self.as_step_def())
        if problems:
            raise ValidationError(problems)


class Conversation(models.Model):
    """One run of a flow with one chat user: where it stands and what it has learnt."""

    class Status(models.TextChoices):
        WAITING_INPUT = "waiting_input", "Waiting for input"
        FINISHED = "finished", "Finished"

    # Opaque: the id is all a bot needs to continue the conversation.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="conversations")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="conversations")
    user_ref = models.CharField(max_length=200, blank=True)
    current_step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attributes = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING_INPUT)
    error_code = models.CharField(max_length=40, blank=True)
    # The bot's output of the latest call, so a GET can show it again.
    last_messages = models.JSONField(default=list, blank=True)
    # While a message is being handled (API calls included) no other message
    # may start; see runner.py for why this is a lease and not a held lock.
    busy_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["bot", "-created_at"], name="conv_bot_created"),
            models.Index(fields=["flow", "-created_at"], name="conv_flow_created"),
        ]

    def __str__(self) -> str:
        return f"{self.flow} · {self.user_ref or self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status == self.Status.FINISHED

    def is_busy(self, now: datetime) -> bool:
        return self.busy_until is not None and now < self.busy_until

    def state(self) -> engine.State:
        return engine.State(
            step=self.current_step_id, attributes=dict(self.attributes), finished=self.is_finished
        )

    def apply(self, turn: engine.Turn) -> None:
        """Take on the state a turn of the engine left (the caller saves)."""
        self.current_step_id = turn.state.step
        self.attributes = turn.state.attributes
        self.status = self.Status.FINISHED if turn.state.finished else self.Status.WAITING_INPUT
        if turn.error:
            self.error_code = turn.error
        self.last_messages = turn.events


class TranscriptEntry(models.Model):
    """A line of a conversation: what the user typed, or what the bot said."""

    class Sender(models.TextChoices):
        USER = "user"
        BOT = "bot"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="transcript"
    )
    sender = models.CharField(max_length=4, choices=Sender.choices)
    # The event as the API shows it: {"type": "text", "text": ...}, {"type": "delay", ...}.
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "transcript"

    def __str__(self) -> str:
        # Shown wherever the entry is named (the admin labels each transcript
        # row with it) with no way to ask who is looking: phones stay masked.
        text = self.payload.get("text", self.payload.get("type", ""))
        return f"{self.sender}: {mask_phones_in_text(str(text))}"

    @classmethod
    def entries_for(
        cls, conversation: Conversation, turn: engine.Turn, now: datetime
    ) -> list["TranscriptEntry"]:
        entries: list[dict[str, Any]] = []
        if turn.recorded_input is not None:
            entries.append(
                {
                    "sender": cls.Sender.USER,
                    "payload": {"type": "text", "text": turn.recorded_input},
                }
            )
        entries.extend({"sender": cls.Sender.BOT, "payload": event} for event in turn.events)
        return [cls(conversation=conversation, created_at=now, **entry) for entry in entries]
