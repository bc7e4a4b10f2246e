"""Flows as plain data: built from, and exported to, JSON-able dicts.

One format serves the demo, `export_config` / `import_config` and the tests.
Steps refer to each other by `label`, to attributes and APIs by name, so a flow
moves between installations whose ids differ:

    {"bot": "Demo bot", "name": "...", "slug": "...", "active": true, "first_step": null,
     "steps": [{"label": "ask_phone", "kind": "ask", "expects": "phone",
                "attribute": "phone", "text": "...", "next": null, "branch": null}, ...]}
"""

from typing import Any

from django.db import transaction

from integrations.models import ApiDefinition, Bot, CustomAttribute

from .models import Flow, Step


class FlowDataError(Exception):
    """The data names something this installation does not have."""


def build_flow(
    bot: Bot,
    *,
    name: str,
    slug: str,
    steps: list[dict[str, Any]],
    active: bool = True,
    first_step: str | None = None,
) -> Flow:
    """Create a flow and its steps from step dicts (see the module docstring)."""
    with transaction.atomic():
        flow = Flow.objects.create(bot=bot, name=name, slug=slug, active=active)
        _create_steps(flow, steps, first_step)
    return flow


def _create_steps(flow: Flow, specs: list[dict[str, Any]], first_step: str | None) -> None:
    attribute_names = {spec["attribute"] for spec in specs if spec.get("attribute")}
    attributes = {a.name: a for a in CustomAttribute.objects.filter(name__in=attribute_names)}
    api_names = {spec["api"] for spec in specs if spec.get("api")}
    apis = {api.name: api for api in ApiDefinition.objects.filter(name__in=api_names)}
    missing = sorted(attribute_names - set(attributes)) + sorted(api_names - set(apis))
    if missing:
        raise FlowDataError(f"Flow {flow.name!r} uses what is not defined: {', '.join(missing)}.")

    steps: dict[str, Step] = {}
    for number, spec in enumerate(specs, start=1):
        label = spec.get("label") or f"step-{number}"
        choices = spec.get("choices", "")
        steps[label] = Step.objects.create(
            flow=flow,
            position=spec.get("position", number * 10),
            kind=spec["kind"],
            text=spec.get("text", ""),
            ask_kind=spec.get("expects", ""),
            attribute=attributes.get(spec.get("attribute") or ""),
            choices="\n".join(choices) if isinstance(choices, list) else choices,
            api=apis.get(spec.get("api") or ""),
            delay_seconds=spec.get("seconds", 0),
            operator=spec.get("operator", ""),
            value=spec.get("value", ""),
        )
    for number, spec in enumerate(specs, start=1):
        step = steps[spec.get("label") or f"step-{number}"]
        for field, key in (("next_step", "next"), ("branch_step", "branch")):
            target = spec.get(key)
            if target is not None and target not in steps:
                raise FlowDataError(f"Flow {flow.name!r}: no step labelled {target!r}.")
            setattr(step, field, steps.get(target) if target is not None else None)
        step.save(update_fields=["next_step", "branch_step"])
    if first_step is not None:
        flow.first_step = steps[first_step]
        flow.save(update_fields=["first_step"])


def export_flow(flow: Flow) -> dict[str, Any]:
    steps = list(flow.steps.select_related("attribute", "api").order_by("position", "id"))
    labels = {step.pk: f"step-{number}" for number, step in enumerate(steps, start=1)}
    return {
        "bot": flow.bot.name,
        "name": flow.name,
        "slug": flow.slug,
        "active": flow.active,
        "first_step": labels.get(flow.first_step_id),
        "steps": [
            {
                "label": labels[step.pk],
                "position": step.position,
                "kind": step.kind,
                "text": step.text,
                "expects": step.ask_kind,
                "attribute": step.attribute.name if step.attribute_id else None,
                "choices": list(step.as_step_def().choices),
                "api": step.api.name if step.api_id else None,
                "seconds": step.delay_seconds,
                "operator": step.operator,
                "value": step.value,
                "next": labels.get(step.next_step_id),
                "branch": labels.get(step.branch_step_id),
            }
            for step in steps
        ],
    }


def export_flows() -> list[dict[str, Any]]:
    """Every flow, for `export_config`."""
    return [export_flow(flow) for flow in Flow.objects.select_related("bot")]


@transaction.atomic
def import_flows(data: list[dict[str, Any]]) -> int:
    """Create or replace flows (matched by bot name and slug), for `import_config`.

    A flow that exists gets the imported steps instead of its own; its running
    conversations end with a flow error at their next message.
    """
    for item in data:
        bot, _ = Bot.objects.get_or_create(name=item["bot"])
        flow, created = Flow.objects.get_or_create(
            bot=bot,
            slug=item["slug"],
            defaults={"name": item["name"], "active": item.get("active", True)},
        )
        if not created:
            flow.name, flow.active, flow.first_step = item["name"], item.get("active", True), None
            flow.save()
            flow.steps.all().delete()
        _create_steps(flow, item.get("steps", []), item.get("first_step"))
    return len(data)
