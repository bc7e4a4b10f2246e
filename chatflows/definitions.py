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

from integrations.configuration import Change, ConfigError
from integrations.models import ApiDefinition, Bot, CustomAttribute

from . import engine
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
        if first_step not in steps:
            raise FlowDataError(f"Flow {flow.name!r}: no step labelled {first_step!r}.")
        flow.first_step = steps[first_step]
        flow.save(update_fields=["first_step"])


def export_flow(flow: Flow) -> dict[str, Any]:
    steps = list(flow.steps.select_related("attribute", "api").order_by("position", "id"))
    labels: dict[int | None, str] = {
        step.pk: f"step-{number}" for number, step in enumerate(steps, start=1)
    }
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
                "attribute": step.attribute.name if step.attribute is not None else None,
                "choices": list(step.as_step_def().choices),
                "api": step.api.name if step.api is not None else None,
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


STEP_DEFAULTS: dict[str, Any] = {
    "text": "",
    "expects": "",
    "attribute": None,
    "choices": [],
    "api": None,
    "seconds": 0,
    "operator": "",
    "value": "",
    "next": None,
    "branch": None,
}


def import_flows(data: list[Any]) -> list[Change]:
    """Create, replace or keep flows (matched by bot name and slug), for `import_config`.

    A flow whose steps are exactly as in the file is left alone, so importing
    the same file again does not disturb running conversations. A changed flow
    gets the imported steps instead of its own; its running conversations end
    with a flow error at their next message. Raises ConfigError, and the caller
    rolls everything back.
    """
    return [_import_flow(item) for item in data]


def _import_flow(item: Any) -> Change:
    wanted = _normalized(item)
    name = f"{wanted['bot']}/{wanted['slug']}"
    bot, _ = Bot.objects.get_or_create(name=wanted["bot"])
    flow = Flow.objects.filter(bot=bot, slug=wanted["slug"]).first()
    if flow is not None and _normalized(export_flow(flow)) == wanted:
        return Change("flow", name, "unchanged")
    action = "created" if flow is None else "changed"
    if flow is None:
        flow = Flow.objects.create(bot=bot, slug=wanted["slug"], name=wanted["name"])
    else:
        flow.first_step = None
        flow.steps.all().delete()
    flow.name, flow.active = wanted["name"], wanted["active"]
    flow.save()
    try:
        _create_steps(flow, wanted["steps"], wanted["first_step"])
    except (FlowDataError, ValueError, TypeError) as exc:
        raise ConfigError(f"Flow {name}: {exc}") from exc
    errors = engine.validate_flow(flow.definition()).errors
    if errors:
        raise ConfigError(f"Flow {name}: " + " ".join(errors))
    return Change("flow", name, action)


def _normalized(item: Any) -> dict[str, Any]:
    """The item in export form with defaults filled in, or ConfigError."""
    if not isinstance(item, dict):
        raise ConfigError("Each flow must be a JSON object.")
    for key in ("bot", "name", "slug"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ConfigError(f"A flow needs a {key!r} (text).")
    steps = item.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise ConfigError(f'Flow {item["slug"]!r}: "steps" must be a list of objects.')
    normalized_steps = []
    for number, step in enumerate(steps, start=1):
        if step.get("kind") not in engine.KINDS:
            raise ConfigError(f"Flow {item['slug']!r}: unknown step kind {step.get('kind')!r}.")
        full = {**STEP_DEFAULTS, "label": f"step-{number}", "position": number * 10, **step}
        if isinstance(full["choices"], str):
            full["choices"] = [line.strip() for line in full["choices"].splitlines() if line]
        normalized_steps.append(full)
    labels = [step["label"] for step in normalized_steps]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Flow {item['slug']!r}: step labels must be unique.")
    return {
        "bot": item["bot"],
        "name": item["name"],
        "slug": item["slug"],
        "active": bool(item.get("active", True)),
        "first_step": item.get("first_step"),
        "steps": normalized_steps,
    }
