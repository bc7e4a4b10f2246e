import json
from dataclasses import replace
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from integrations.log_admin import can_see_full_phone
from integrations.models import CustomAttribute
from integrations.phones import mask_phone, mask_phones_in_text

from . import engine
from .models import Conversation, Flow, Step, TranscriptEntry


class StepInlineFormSet(BaseInlineFormSet):
    """Checks the flow as a whole with the engine's validator before anything is saved."""

    def add_fields(self, form: forms.ModelForm, index: int | None) -> None:
        super().add_fields(form, index)
        # Targets are steps of this same flow only.
        steps = Step.objects.filter(flow=self.instance) if self.instance.pk else Step.objects.none()
        for name in ("next_step", "branch_step"):
            cast(forms.ModelChoiceField, form.fields[name]).queryset = steps

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # each step's own problems are already shown beside it
        kept = [
            form.instance
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        kept.sort(key=lambda step: (step.position, step.pk or 0))
        definitions = []
        for number, step in enumerate(kept):
            definition = step.as_step_def()
            if step.pk is None:
                # Not saved yet, so nothing can point at it; any unique id will do.
                definition = replace(definition, id=-number - 1)
            definitions.append(definition)
        report = engine.validate_flow(
            engine.FlowDef(steps=tuple(definitions), first=self.instance.first_step_id)
        )
        if report.errors:
            raise ValidationError(report.errors)


class StepInline(admin.StackedInline):
    model = Step
    formset = StepInlineFormSet
    extra = 0
    ordering = ["position", "id"]
    fields = [
        ("position", "kind"),
        "text",
        "ask_kind",
        "attribute",
        "choices",
        "api",
        "delay_seconds",
        "operator",
        "value",
        "next_step",
        "branch_step",
    ]

    class Media:
        # Shows only the fields the chosen kind uses; no build step.
        js = ["chatflows/step_admin.js"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in ("text", "choices"):
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2, "cols": 60})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class FlowForm(forms.ModelForm):
    class Meta:
        model = Flow
        fields = ["bot", "name", "slug", "active", "first_step"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "first_step" in self.fields:
            flow_steps = (
                Step.objects.filter(flow=self.instance) if self.instance.pk else Step.objects.none()
            )
            cast(forms.ModelChoiceField, self.fields["first_step"]).queryset = flow_steps


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    list_display = ["name", "bot", "slug", "active", "step_count", "updated_at", "preview_link"]
    list_filter = ["active", "bot"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["preview_link"]
    fields = ["bot", "name", "slug", "active", "first_step", "preview_link"]
    inlines = [StepInline]
    actions = ["duplicate_flows"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flow]:
        return super().get_queryset(request).select_related("bot")

    @admin.display(description="steps")
    def step_count(self, flow: Flow) -> int:
        return flow.steps.count()

    @admin.display(description="preview")
    def preview_link(self, flow: Flow) -> str:
        if not flow.pk:
            return "Save the flow first."
        url = reverse("flow-preview", args=[flow.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">Preview</a>', url)

    @admin.action(description="Duplicate selected flows")
    def duplicate_flows(self, request: HttpRequest, queryset: QuerySet[Flow]) -> None:
        copies = [flow.duplicate() for flow in queryset]
        self.message_user(
            request,
            "Created " + ", ".join(f"“{copy.name}”" for copy in copies) + " (inactive).",
            messages.SUCCESS,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Unreachable steps are allowed (a flow is often edited in stages) but
        # worth knowing about.
        for warning in engine.validate_flow(form.instance.definition()).warnings:
            messages.warning(request, warning)


def _as_json(value: Any) -> str:
    # As the admin shows a read-only JSONField.
    return json.dumps(value, ensure_ascii=False)


def mask_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A transcript entry with phone numbers masked in its text.

    Entries do not say which step they answered, so any text is checked: a
    user's answer to a phone ask is a number as typed (masked whole, read
    with PHONE_DEFAULT_REGION), and a bot message may repeat it through a
    {{phone}} placeholder.
    """
    region = settings.PHONE_DEFAULT_REGION
    return {
        key: mask_phones_in_text(value, region=region)
        if isinstance(value, str) and key != "type"
        else value
        for key, value in payload.items()
    }


def phone_attribute_names(conversation: Conversation) -> set[str]:
    """Attributes holding a phone: typed phone, or saved by one of the flow's phone asks."""
    names = set(conversation.attributes)
    typed = CustomAttribute.objects.filter(name__in=names, type=CustomAttribute.Type.PHONE)
    asked = Step.objects.filter(
        flow_id=conversation.flow_id, kind=Step.Kind.ASK, ask_kind=engine.PHONE
    ).exclude(attribute=None)
    return {
        *typed.values_list("name", flat=True),
        *asked.values_list("attribute__name", flat=True),
    } & names


class TranscriptInline(admin.TabularInline):
    model = TranscriptEntry
    extra = 0
    fields = ["created_at", "sender", "payload"]
    readonly_fields = ["created_at", "sender", "payload", "masked_payload"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        if can_see_full_phone(request):
            return ["created_at", "sender", "payload"]
        return ["created_at", "sender", "masked_payload"]

    @admin.display(description="payload")
    def masked_payload(self, entry: TranscriptEntry) -> str:
        return _as_json(mask_payload(entry.payload))


CONVERSATION_FIELDS = [
    "id",
    "flow",
    "bot",
    "user_ref",
    "status",
    "error_code",
    "current_step",
    "attributes",
    "created_at",
    "updated_at",
]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-only; phone numbers are shown in full only with integrations.view_full_phone."""

    # The id (a UUID) stays searchable; the list leads with what staff scan for.
    list_display = ["created_at", "flow", "bot", "user_ref", "status", "error_code"]
    list_display_links = ["created_at"]
    list_filter = ["status", "bot", "flow"]
    search_fields = ["user_ref", "=id"]
    date_hierarchy = "created_at"
    readonly_fields = [*CONVERSATION_FIELDS, "masked_attributes"]
    fields = CONVERSATION_FIELDS
    inlines = [TranscriptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        if can_see_full_phone(request):
            return CONVERSATION_FIELDS
        return [
            "masked_attributes" if name == "attributes" else name for name in CONVERSATION_FIELDS
        ]

    @admin.display(description="attributes")
    def masked_attributes(self, conversation: Conversation) -> str:
        phones = phone_attribute_names(conversation)
        shown = {
            name: mask_phone(str(value)) if name in phones and value not in (None, "") else value
            for name, value in conversation.attributes.items()
        }
        return _as_json(shown)
