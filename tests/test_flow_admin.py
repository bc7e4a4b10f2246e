"""Flows in the admin, as staff edit them: steps inline, validation on save, duplicate, preview."""

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from chatflows.definitions import build_flow
from chatflows.models import Flow, Step
from integrations.models import ApiDefinition, CustomAttribute

from .log_helpers import staff_client

STEPS = [
    {"label": "hello", "kind": "message", "text": "Hello!"},
    {"label": "ask", "kind": "ask", "expects": "phone", "attribute": "phone", "text": "Number?"},
    {"label": "send", "kind": "api_call", "api": "Send", "branch": "sorry"},
    {"label": "done", "kind": "end"},
    {"label": "sorry", "kind": "message", "text": "Sorry.", "next": "ask"},
]  # fmt: skip


@pytest.fixture
def staff(client, db):
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def flow(bot):
    CustomAttribute.objects.create(name="phone", type="phone")
    ApiDefinition.objects.create(name="Send", method="POST", url="https://api.example.com/send")
    return build_flow(bot, name="Verify", slug="verify", steps=STEPS)


def form_data(flow: Flow, changes: dict[int, dict[str, Any]] | None = None, new=()) -> dict:
    """The change form as the browser posts it, with `changes` to existing steps (by index)."""
    changes = changes or {}
    data: dict[str, Any] = {
        "bot": flow.bot_id,
        "name": flow.name,
        "slug": flow.slug,
        "active": "on",
        "first_step": flow.first_step_id or "",
    }
    existing = list(flow.steps.order_by("position", "id"))
    rows = []
    for index, step in enumerate(existing):
        row = {
            "id": step.pk,
            "position": step.position,
            "kind": step.kind,
            "text": step.text,
            "ask_kind": step.ask_kind,
            "attribute": step.attribute_id or "",
            "choices": step.choices,
            "api": step.api_id or "",
            "delay_seconds": step.delay_seconds,
            "operator": step.operator,
            "value": step.value,
            "next_step": step.next_step_id or "",
            "branch_step": step.branch_step_id or "",
        }
        row.update(changes.get(index, {}))
        rows.append(row)
    for spec in new:
        rows.append({"id": "", "delay_seconds": 0, **spec})
    data.update(
        {
            "steps-TOTAL_FORMS": len(rows),
            "steps-INITIAL_FORMS": len(existing),
            "steps-MIN_NUM_FORMS": 0,
            "steps-MAX_NUM_FORMS": 1000,
        }
    )
    for index, row in enumerate(rows):
        data[f"steps-{index}-flow"] = flow.pk
        for key, value in row.items():
            data[f"steps-{index}-{key}"] = value
    return data


def change_url(flow: Flow) -> str:
    return f"/admin/chatflows/flow/{flow.pk}/change/"


def test_the_flow_page_shows_its_steps_in_order_with_each_kinds_fields(staff, flow):
    page = staff.get(change_url(flow)).content.decode()
    positions = [page.index(f'name="steps-{i}-position"') for i in range(len(STEPS))]
    assert positions == sorted(positions)
    assert page.index("Hello!") < page.index("Number?") < page.index("Sorry.")
    assert "chatflows/step_admin.js" in page
    assert 'name="steps-0-ask_kind"' in page


def test_a_valid_change_is_saved(staff, flow):
    response = staff.post(change_url(flow), form_data(flow, {0: {"text": "Welcome!"}}))
    assert response.status_code == 302
    assert flow.steps.order_by("position").first().text == "Welcome!"


def test_an_api_step_without_an_api_is_refused(staff, flow):
    response = staff.post(change_url(flow), form_data(flow, {2: {"api": ""}}))
    assert response.status_code == 200
    assert "An API call step needs an API definition." in response.content.decode()
    assert flow.steps.get(kind="api_call").api is not None


def test_an_ask_step_without_an_attribute_is_refused(staff, flow):
    response = staff.post(change_url(flow), form_data(flow, {1: {"attribute": ""}}))
    assert "An ask step needs an attribute to save the answer in." in response.content.decode()


def test_a_go_to_without_a_target_is_refused(staff, flow):
    new = [{"position": 60, "kind": "goto", "next_step": ""}]
    response = staff.post(change_url(flow), form_data(flow, new=new))
    assert "A go-to step needs a step to go to." in response.content.decode()
    assert not flow.steps.filter(kind="goto").exists()


def test_deleting_a_step_that_another_points_to_is_refused(staff, flow):
    # "sorry" (index 4) is the API step's error branch.
    response = staff.post(change_url(flow), form_data(flow, {4: {"DELETE": "on"}}))
    assert response.status_code == 200
    assert "points to a step that is not in this flow" in response.content.decode()
    assert flow.steps.count() == len(STEPS)


def test_an_unreachable_step_is_saved_with_a_warning(staff, flow):
    new = [{"position": 5, "kind": "end"}]
    response = staff.post(change_url(flow), form_data(flow, new=new), follow=True)
    assert response.status_code == 200
    warnings = [str(m) for m in response.context["messages"]]
    assert any("can never be reached" in warning for warning in warnings)
    assert flow.steps.count() == len(STEPS) + 1


def test_a_new_flow_is_created_with_its_steps(staff, bot):
    data = {
        "bot": bot.pk,
        "name": "Hello",
        "slug": "hello",
        "active": "on",
        "first_step": "",
        "steps-TOTAL_FORMS": 2,
        "steps-INITIAL_FORMS": 0,
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
        "steps-0-position": 10,
        "steps-0-kind": "message",
        "steps-0-text": "Hi",
        "steps-0-delay_seconds": 0,
        "steps-1-position": 20,
        "steps-1-kind": "end",
        "steps-1-delay_seconds": 0,
    }
    response = staff.post("/admin/chatflows/flow/add/", data)
    assert response.status_code == 302
    assert list(Flow.objects.get(slug="hello").steps.values_list("kind", flat=True)) == [
        "message",
        "end",
    ]


def test_duplicating_a_flow_copies_its_steps_and_their_targets(staff, flow):
    response = staff.post(
        "/admin/chatflows/flow/",
        {"action": "duplicate_flows", "_selected_action": [flow.pk]},
        follow=True,
    )
    assert response.status_code == 200
    copy = Flow.objects.get(slug="verify-copy")
    assert copy.name == "Verify (copy)"
    assert not copy.active
    send = copy.steps.get(kind="api_call")
    assert send.branch_step.flow == copy
    assert send.branch_step.text == "Sorry."
    assert Step.objects.filter(flow=flow).count() == copy.steps.count()


def test_the_flow_list_links_to_the_preview(staff, flow):
    page = staff.get("/admin/chatflows/flow/").content.decode()
    assert f'href="/flows/{flow.pk}/preview"' in page


def test_the_preview_page_is_for_staff_only(client, flow):
    response = client.get(f"/flows/{flow.pk}/preview")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_preview_page_loads_its_own_script_and_sets_the_csrf_cookie(staff, flow):
    response = staff.get(f"/flows/{flow.pk}/preview")
    page = response.content.decode()
    assert response.status_code == 200
    assert "chatflows/preview.js" in page
    assert "https://" not in page  # no CDN
    assert "csrftoken" in response.cookies


def test_staff_may_preview_an_inactive_flow(staff, flow):
    flow.active = False
    flow.save()
    response = staff.post(
        f"/api/v1/flows/{flow.pk}/conversations", {}, content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["expects"] == "phone"


def test_a_conversation_page_shows_the_transcript_with_the_code_redacted(staff, bot):
    CustomAttribute.objects.create(name="otp_code")
    steps = [{"kind": "ask", "expects": "code", "attribute": "otp_code", "text": "Code?"}]
    flow = build_flow(bot, name="Code", slug="code", steps=steps)
    started = staff.post(
        f"/api/v1/flows/{flow.pk}/conversations", {}, content_type="application/json"
    )
    conversation_id = started.json()["id"]
    staff.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        {"text": "123456"},
        content_type="application/json",
    )
    listing = staff.get("/admin/chatflows/conversation/")
    page = staff.get(f"/admin/chatflows/conversation/{conversation_id}/change/")
    assert listing.status_code == 200
    assert page.status_code == 200
    assert "Code?" in page.content.decode()
    assert "123456" not in page.content.decode()


def test_the_conversation_list_leads_each_row_by_its_time_and_finds_one_by_its_id(staff, flow):
    started = staff.post(
        f"/api/v1/flows/{flow.pk}/conversations", {}, content_type="application/json"
    )
    conversation_id = started.json()["id"]

    listing = staff.get("/admin/chatflows/conversation/").content.decode()
    found = staff.get("/admin/chatflows/conversation/", {"q": conversation_id})

    assert re.search(r'<th class="field-created_at[^"]*"><a href="[^"]*/change/', listing)
    assert '<td class="field-status">Waiting for input</td>' in listing
    assert [str(row.pk) for row in found.context["cl"].result_list] == [conversation_id]


# --- Phone numbers on the conversation page ----------------------------------------

PHONE_STEPS = [
    {"kind": "ask", "expects": "phone", "attribute": "mobile", "text": "Your number?"},
    {"kind": "message", "text": "We will text {{mobile}}."},
    {"kind": "ask", "expects": "phone", "attribute": "contact", "text": "And a second one?"},
    {"kind": "end"},
]  # fmt: skip


@pytest.fixture
def phone_conversation(api, bot) -> str:
    """A conversation where the user typed two numbers: one into a phone attribute, one into a
    text attribute (through a phone ask)."""
    CustomAttribute.objects.create(name="mobile", type="phone")
    CustomAttribute.objects.create(name="contact", type="text")
    flow = build_flow(bot, name="Phones", slug="phones", steps=PHONE_STEPS)
    conversation_id = api.post(f"/api/v1/flows/{flow.pk}/conversations", format="json").json()["id"]
    for text in ["+1 415 555 2671", "+44 20 7946 0958"]:
        sent = api.post(
            f"/api/v1/conversations/{conversation_id}/messages", {"text": text}, format="json"
        )
        assert sent.status_code == 200, sent.json()
    return conversation_id


def conversation_page(client, conversation_id: str) -> str:
    response = client.get(f"/admin/chatflows/conversation/{conversation_id}/change/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def staff_without_full_phones(db):
    return staff_client(
        "viewer", permissions=["chatflows.view_conversation", "chatflows.view_transcriptentry"]
    )


@pytest.fixture
def staff_with_full_phones(db):
    return staff_client(
        "supervisor",
        permissions=[
            "chatflows.view_conversation",
            "chatflows.view_transcriptentry",
            "integrations.view_full_phone",
        ],
    )


def test_without_full_phone_permission_a_phone_attribute_is_masked(
    staff_without_full_phones, phone_conversation
):
    html = conversation_page(staff_without_full_phones, phone_conversation)
    assert "&quot;mobile&quot;: &quot;+1415****2671&quot;" in html
    assert "+14155552671" not in html


def test_without_full_phone_permission_an_attribute_a_phone_ask_saved_is_masked(
    staff_without_full_phones, phone_conversation
):
    html = conversation_page(staff_without_full_phones, phone_conversation)
    assert "&quot;contact&quot;: &quot;+4420****0958&quot;" in html
    assert "+442079460958" not in html


def test_without_full_phone_permission_the_users_phone_answers_are_masked_in_the_transcript(
    staff_without_full_phones, phone_conversation
):
    html = conversation_page(staff_without_full_phones, phone_conversation)
    assert "Your number?" in html
    assert "&quot;text&quot;: &quot;+1415****2671&quot;" in html
    assert "+1 415 555 2671" not in html
    assert "+44 20 7946 0958" not in html


def test_without_full_phone_permission_a_bot_message_repeating_the_phone_is_masked(
    staff_without_full_phones, phone_conversation
):
    html = conversation_page(staff_without_full_phones, phone_conversation)
    assert "&quot;text&quot;: &quot;We will text +1415****2671.&quot;" in html
    assert "We will text +14155552671" not in html


def test_with_full_phone_permission_the_conversation_page_shows_phones_in_full(
    staff_with_full_phones, phone_conversation
):
    html = conversation_page(staff_with_full_phones, phone_conversation)
    assert "&quot;mobile&quot;: &quot;+14155552671&quot;" in html
    assert "&quot;text&quot;: &quot;+1 415 555 2671&quot;" in html
    assert "&quot;text&quot;: &quot;We will text +14155552671.&quot;" in html
