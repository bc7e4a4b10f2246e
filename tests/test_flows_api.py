"""Chat flows over REST: listing, starting and answering conversations, bad input."""

import threading
import uuid

import hypothesis
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from hypothesis import strategies as st
from rest_framework.test import APIClient

from chatflows.definitions import build_flow
from chatflows.models import Conversation, Flow
from integrations.models import ApiCallLog, ApiDefinition, CustomAttribute

PHONE = "+14155552671"

ASK_PHONE_THEN_BYE = [
    {"label": "hello", "kind": "message", "text": "Hello!"},
    {"label": "ask", "kind": "ask", "expects": "phone", "attribute": "phone",
     "text": "Your number?"},
    {"label": "bye", "kind": "message", "text": "Thanks, {{phone}}."},
]  # fmt: skip


@pytest.fixture
def attributes(db) -> None:
    for name, kind in [("phone", "phone"), ("name", "text"), ("otp_code", "text")]:
        CustomAttribute.objects.create(name=name, type=kind)


@pytest.fixture
def flow(bot, attributes):
    return build_flow(bot, name="Verify", slug="verify", steps=ASK_PHONE_THEN_BYE)


def start(api, flow, **body) -> dict:
    response = api.post(f"/api/v1/flows/{flow.pk}/conversations", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def say(api, conversation: dict, text: str):
    return api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"text": text}, format="json"
    )


# --- Flows -----------------------------------------------------------------------------


def test_a_bot_lists_only_its_own_flows(api, other_api, flow):
    assert [f["slug"] for f in api.get("/api/v1/flows").json()] == ["verify"]
    assert other_api.get("/api/v1/flows").json() == []


def test_a_flow_definition_lists_its_steps_in_order(api, flow):
    body = api.get(f"/api/v1/flows/{flow.pk}").json()
    assert [step["kind"] for step in body["steps"]] == ["message", "ask", "message"]
    assert body["steps"][1]["expects"] == "phone"
    assert body["steps"][1]["attribute"] == "phone"


def test_another_bots_flow_is_not_found(other_api, flow):
    assert other_api.get(f"/api/v1/flows/{flow.pk}").json()["code"] == "not_found"
    response = other_api.post(f"/api/v1/flows/{flow.pk}/conversations", {}, format="json")
    assert response.status_code == 404


def test_a_flow_id_that_is_not_a_number_is_not_found(api, flow):
    response = api.get("/api/v1/flows/verify")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_staff_session_sees_every_bots_flows(client, flow):
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert [f["slug"] for f in client.get("/api/v1/flows").json()] == ["verify"]


def test_a_request_without_a_key_is_refused(flow):
    response = APIClient().get("/api/v1/flows")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


# --- Conversations ---------------------------------------------------------------------


def test_starting_a_conversation_runs_until_the_first_question(api, flow):
    conversation = start(api, flow, user_ref="chat-user-1")
    assert conversation["status"] == "waiting_input"
    assert conversation["expects"] == "phone"
    assert conversation["messages"] == [
        {"type": "text", "text": "Hello!"},
        {"type": "text", "text": "Your number?"},
    ]
    assert conversation["user_ref"] == "chat-user-1"


def test_an_answer_is_saved_and_the_flow_goes_on_to_its_end(api, flow):
    conversation = start(api, flow)
    body = say(api, conversation, "+1 415 555 2671").json()
    assert body["attributes"] == {"phone": PHONE}
    assert body["messages"] == [{"type": "text", "text": f"Thanks, {PHONE}."}]
    assert body["status"] == "finished"
    assert body["expects"] is None


def test_an_invalid_phone_is_asked_again_rather_than_refused(api, flow):
    conversation = start(api, flow)
    response = say(api, conversation, "not a phone")
    assert response.status_code == 200
    assert response.json()["expects"] == "phone"
    assert "country code" in response.json()["messages"][0]["text"]
    assert say(api, conversation, PHONE).json()["status"] == "finished"


def test_empty_text_is_asked_again(api, flow):
    conversation = start(api, flow)
    body = say(api, conversation, "").json()
    assert body["status"] == "waiting_input"
    assert body["expects"] == "phone"


def test_ten_kilobytes_of_text_are_refused_and_the_conversation_goes_on(api, flow):
    conversation = start(api, flow)
    response = say(api, conversation, "1" * 10_000)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "text" in response.json()["errors"]
    assert say(api, conversation, PHONE).json()["status"] == "finished"


def test_a_message_without_text_is_refused(api, flow):
    conversation = start(api, flow)
    response = api.post(f"/api/v1/conversations/{conversation['id']}/messages", {}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_a_message_to_a_finished_conversation_is_refused_with_a_conflict(api, flow):
    conversation = start(api, flow)
    say(api, conversation, PHONE)
    response = say(api, conversation, "hello?")
    assert response.status_code == 409
    assert response.json()["code"] == "conversation_finished"


@pytest.mark.parametrize("conversation_id", [str(uuid.uuid4()), "nope"])
def test_an_unknown_conversation_is_not_found(api, flow, conversation_id):
    response = say(api, {"id": conversation_id}, "hi")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert api.get(f"/api/v1/conversations/{conversation_id}").status_code == 404


def test_another_bots_conversation_is_not_found(api, other_api, flow):
    conversation = start(api, flow)
    assert say(other_api, conversation, PHONE).status_code == 404
    assert other_api.get(f"/api/v1/conversations/{conversation['id']}").status_code == 404


def test_a_conversation_shows_its_whole_transcript(api, flow):
    conversation = start(api, flow)
    say(api, conversation, "oops")
    say(api, conversation, PHONE)
    body = api.get(f"/api/v1/conversations/{conversation['id']}").json()
    lines = [(entry["sender"], entry["text"]) for entry in body["transcript"]]
    assert lines[:3] == [("bot", "Hello!"), ("bot", "Your number?"), ("user", "oops")]
    assert lines[-2:] == [("user", PHONE), ("bot", f"Thanks, {PHONE}.")]


def test_a_typed_code_is_neither_stored_nor_shown(api, bot, attributes):
    steps = [
        {"label": "ask", "kind": "ask", "expects": "code", "attribute": "otp_code", "text": "?"},
        {"label": "echo", "kind": "message", "text": "You typed {{otp_code}}"},
    ]
    flow = build_flow(bot, name="Code", slug="code", steps=steps)
    conversation = start(api, flow)
    body = say(api, conversation, "123456").json()
    detail = api.get(f"/api/v1/conversations/{conversation['id']}").content.decode()
    stored = Conversation.objects.get(pk=conversation["id"])
    assert "123456" not in str(body)
    assert "123456" not in detail
    assert "otp_code" not in stored.attributes
    assert "123456" not in str(list(stored.transcript.values_list("payload", flat=True)))


def test_initial_attributes_are_kept(api, flow):
    conversation = start(api, flow, attributes={"name": "Ada", "vip": True})
    assert conversation["attributes"] == {"name": "Ada", "vip": True}


def test_initial_attributes_must_be_plain_values(api, flow):
    response = api.post(
        f"/api/v1/flows/{flow.pk}/conversations",
        {"attributes": {"name": {"nested": 1}}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_an_inactive_flow_starts_no_conversation(api, flow):
    flow.active = False
    flow.save()
    response = api.post(f"/api/v1/flows/{flow.pk}/conversations", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "flow_inactive"


def test_a_loop_ends_the_conversation_with_a_flow_error(api, bot, attributes):
    steps = [
        {"label": "a", "kind": "message", "text": "again"},
        {"label": "b", "kind": "goto", "next": "a"},
    ]
    flow = build_flow(bot, name="Loop", slug="loop", steps=steps)
    conversation = start(api, flow)
    assert conversation["status"] == "finished"
    assert conversation["error"] == "step_limit_exceeded"


def test_a_failing_api_takes_the_error_branch_and_its_log_says_why(api, bot, attributes, settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    # Port 9 (discard) is closed on loopback: the connection is refused at once.
    broken = ApiDefinition.objects.create(name="Broken", method="GET", url="http://127.0.0.1:9/x")
    steps = [
        {"label": "ask", "kind": "ask", "expects": "text", "attribute": "name", "text": "Name?"},
        {"label": "call", "kind": "api_call", "api": "Broken", "branch": "sorry"},
        {"label": "ok", "kind": "message", "text": "Done"},
        {"label": "end", "kind": "end"},
        {"label": "sorry", "kind": "message", "text": "That did not work.", "next": "ask"},
    ]
    flow = build_flow(bot, name="Broken", slug="broken", steps=steps)
    conversation = start(api, flow)
    body = say(api, conversation, "Ada").json()
    assert [m["text"] for m in body["messages"]] == ["That did not work.", "Name?"]
    assert body["status"] == "waiting_input"
    log = ApiCallLog.objects.get(definition=broken)
    assert log.outcome == "error"
    assert log.error_code == "connection_failed"
    assert log.conversation_id == conversation["id"]


def test_a_deleted_api_definition_takes_the_error_branch(api, bot, attributes):
    ApiDefinition.objects.create(name="Gone", method="GET", url="http://127.0.0.1:9/x")
    steps = [
        {"label": "call", "kind": "api_call", "api": "Gone", "branch": "sorry"},
        {"label": "end", "kind": "end"},
        {"label": "sorry", "kind": "message", "text": "Unavailable."},
    ]
    flow = build_flow(bot, name="Gone", slug="gone", steps=steps)
    step = flow.steps.get(kind="api_call")
    step.api = None  # as after the definition was deleted (PROTECT stops a real delete)
    step.save()
    assert start(api, flow)["messages"] == [{"type": "text", "text": "Unavailable."}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_messages_at_once_are_handled_one_after_the_other(bot, api_key, attributes):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite has no row locks")
    steps = [
        {"label": "a", "kind": "ask", "expects": "text", "attribute": "name", "text": "1?"},
        {"label": "b", "kind": "ask", "expects": "text", "attribute": "name", "text": "2?"},
        {"label": "c", "kind": "message", "text": "done"},
    ]
    flow = build_flow(bot, name="Two", slug="two", steps=steps)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    conversation = start(client, flow)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send(text: str) -> None:
        own = APIClient()
        own.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        barrier.wait()
        statuses.append(say(own, conversation, text).status_code)
        connection.close()

    threads = [threading.Thread(target=send, args=(t,)) for t in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    stored = Conversation.objects.get(pk=conversation["id"])
    assert stored.status == "finished"
    user_lines = stored.transcript.filter(sender="user").count()
    assert user_lines == 2


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(text=st.text(max_size=5000) | st.sampled_from(["", " ", "\x00", "1" * 4097]))
def test_no_message_text_makes_the_server_fail(api, bot, attributes, text):
    flow = Flow.objects.filter(slug="echo").first() or build_flow(
        bot,
        name="Echo",
        slug="echo",
        steps=[
            {"label": "ask", "kind": "ask", "expects": "phone", "attribute": "phone"},
            {"label": "again", "kind": "goto", "next": "ask"},
        ],
    )
    conversation = start(api, flow)
    response = say(api, conversation, text)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["code"] == "invalid_request"
