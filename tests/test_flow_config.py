"""Flows in export_config / import_config: they travel with the attributes and APIs they use."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from chatflows.definitions import build_flow
from chatflows.models import Conversation, Flow
from integrations.models import ApiDefinition, CustomAttribute

STEPS = [
    {"label": "ask", "kind": "ask", "expects": "choice", "attribute": "colour",
     "choices": ["Red", "Blue"], "text": "Colour?"},
    {"label": "check", "kind": "api_call", "api": "Check", "branch": "sorry"},
    {"label": "is_red", "kind": "condition", "attribute": "colour", "operator": "equals",
     "value": "Red", "next": "red", "branch": "other"},
    {"label": "red", "kind": "message", "text": "Red it is."},
    {"label": "other", "kind": "end"},
    {"label": "sorry", "kind": "delay", "seconds": 2, "next": "ask"},
]  # fmt: skip


@pytest.fixture
def flow(bot):
    CustomAttribute.objects.create(name="colour")
    ApiDefinition.objects.create(name="Check", method="GET", url="https://api.example.com/c")
    return build_flow(bot, name="Colours", slug="colours", steps=STEPS)


def export() -> dict:
    out = StringIO()
    call_command("export_config", stdout=out)
    return json.loads(out.getvalue())


def import_(data: dict, tmp_path) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    out = StringIO()
    call_command("import_config", str(path), stdout=out)
    return out.getvalue()


def test_export_includes_flows_with_steps_by_label_and_names(flow):
    (exported,) = export()["flows"]
    assert exported["bot"] == "Support bot"
    assert exported["slug"] == "colours"
    steps = exported["steps"]
    assert [step["kind"] for step in steps] == [s["kind"] for s in STEPS]
    assert steps[1]["api"] == "Check"
    assert steps[1]["branch"] == steps[5]["label"]
    assert steps[0]["choices"] == ["Red", "Blue"]


def test_an_exported_flow_imports_into_an_empty_installation(flow, tmp_path):
    data = export()
    Flow.objects.all().delete()
    output = import_(data, tmp_path)
    assert "created flow 'Support bot/colours'" in output
    copy = Flow.objects.get(slug="colours")
    assert copy.steps.get(kind="api_call").branch_step.kind == "delay"
    assert copy.steps.get(kind="condition").next_step.text == "Red it is."


def test_importing_the_same_flow_again_leaves_it_and_its_conversations_alone(flow, tmp_path):
    conversation = Conversation.objects.create(
        flow=flow, bot=flow.bot, current_step=flow.steps.first()
    )
    output = import_(export(), tmp_path)
    assert "unchanged flow 'Support bot/colours'" in output
    conversation.refresh_from_db()
    assert conversation.current_step is not None


def test_a_changed_flow_gets_the_imported_steps(flow, tmp_path):
    data = export()
    data["flows"][0]["steps"][3]["text"] = "Rouge."
    assert "changed flow" in import_(data, tmp_path)
    assert flow.steps.get(kind="message").text == "Rouge."


def test_an_invalid_flow_is_refused_and_nothing_is_imported(flow, tmp_path):
    data = export()
    data["flows"][0]["slug"] = "broken"
    data["flows"][0]["steps"][1]["api"] = None
    with pytest.raises(CommandError, match="An API call step needs an API definition"):
        import_(data, tmp_path)
    assert not Flow.objects.filter(slug="broken").exists()


def test_a_flow_naming_an_unknown_attribute_is_refused(flow, tmp_path):
    data = export()
    data["flows"][0]["slug"] = "other"
    data["flows"][0]["steps"][0]["attribute"] = "nope"
    with pytest.raises(CommandError, match="nope"):
        import_(data, tmp_path)
