"""Request parsing and response shapes of the chat-flow endpoints."""

import re
from typing import Any

from rest_framework import serializers

from integrations.serializers import StrictSerializer, TextField

from .models import Conversation, Flow, Step

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 1000
# Longer than any chat message a person types; more is refused, not cut.
MAX_MESSAGE_TEXT = 4096


class StartConversationSerializer(StrictSerializer):
    user_ref = TextField(max_length=200, required=False, default="", allow_blank=True)
    attributes = serializers.DictField(required=False, default=dict)

    def validate_attributes(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ATTRIBUTES:
            raise serializers.ValidationError(f"At most {MAX_ATTRIBUTES} attributes.")
        for name, item in value.items():
            if not ATTRIBUTE_NAME.match(name):
                raise serializers.ValidationError(f"{name!r} is not an attribute name.")
            if not isinstance(item, str | int | float | bool | None):
                raise serializers.ValidationError(f"{name}: only text, numbers and booleans.")
            if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_TEXT:
                raise serializers.ValidationError(
                    f"{name}: at most {MAX_ATTRIBUTE_TEXT} characters."
                )
        return value


class MessageSerializer(StrictSerializer):
    # Blank text is let through: the flow answers it ("Please type an answer.").
    text = serializers.CharField(
        max_length=MAX_MESSAGE_TEXT, allow_blank=True, trim_whitespace=False
    )


class FlowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    active = serializers.BooleanField()
    bot = serializers.CharField(source="bot.name")
    updated_at = serializers.DateTimeField()


class StepSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    kind = serializers.CharField()
    text = serializers.CharField()
    expects = serializers.CharField(source="ask_kind")
    attribute = serializers.SerializerMethodField()
    choices = serializers.SerializerMethodField()
    api = serializers.SerializerMethodField()
    delay_seconds = serializers.IntegerField()
    operator = serializers.CharField()
    value = serializers.CharField()
    next_step = serializers.IntegerField(source="next_step_id", allow_null=True)
    branch_step = serializers.IntegerField(source="branch_step_id", allow_null=True)

    def get_attribute(self, step: Step) -> str | None:
        return step.attribute.name if step.attribute is not None else None

    def get_choices(self, step: Step) -> list[str]:
        return list(step.as_step_def().choices)

    def get_api(self, step: Step) -> dict[str, Any] | None:
        return {"id": step.api.pk, "name": step.api.name} if step.api is not None else None


class FlowDefinitionSerializer(FlowSerializer):
    first_step = serializers.IntegerField(source="first_step_id", allow_null=True)
    steps = serializers.SerializerMethodField()

    def get_steps(self, flow: Flow) -> list[dict[str, Any]]:
        steps = flow.steps.select_related("attribute", "api").order_by("position", "id")
        return list(StepSerializer(steps, many=True).data)


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    flow = serializers.IntegerField(source="flow_id")
    user_ref = serializers.CharField()
    status = serializers.CharField()
    messages = serializers.ListField(source="last_messages", child=serializers.DictField())
    expects = serializers.SerializerMethodField()
    choices = serializers.SerializerMethodField()
    attributes = serializers.DictField()
    error = serializers.SerializerMethodField(help_text="A flow error's code, or null")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def _waiting_on(self, conversation: Conversation) -> Step | None:
        if conversation.is_finished or conversation.current_step is None:
            return None
        return conversation.current_step

    def get_error(self, conversation: Conversation) -> str | None:
        return conversation.error_code or None

    def get_expects(self, conversation: Conversation) -> str | None:
        step = self._waiting_on(conversation)
        return step.ask_kind if step else None

    def get_choices(self, conversation: Conversation) -> list[str]:
        step = self._waiting_on(conversation)
        return list(step.as_step_def().choices) if step and step.ask_kind == "choice" else []


class TranscriptEntrySerializer(serializers.Serializer):
    sender = serializers.CharField()
    payload = serializers.DictField()
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        return {"sender": data["sender"], **data["payload"], "created_at": data["created_at"]}


class ConversationDetailSerializer(ConversationSerializer):
    transcript = TranscriptEntrySerializer(many=True)
