"""The flow engine on its own: definitions and state in, state and events out, no database."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from chatflows import engine
from chatflows.engine import FlowDef, Options, State, StepDef

OPTIONS = Options(otp_length=6, phone_region=None)


@dataclass
class Outcome:
    ok: bool
    saved: dict[str, Any] = field(default_factory=dict)


class FakeApi:
    """Stands in for the executor: answers each call with the next outcome."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[int | None, dict[str, Any]]] = []

    def __call__(self, step: StepDef, attributes: Mapping[str, Any]) -> Outcome:
        self.calls.append((step.api, dict(attributes)))
        return self.outcomes.pop(0)


def no_api(step: StepDef, attributes: Mapping[str, Any]) -> Outcome:
    raise AssertionError("no API call expected")


def flow(*steps: StepDef, first: int | None = None) -> FlowDef:
    return FlowDef(steps=steps, first=first)


def start(definition: FlowDef, call_api: Any = no_api, **attributes: Any) -> engine.Turn:
    return engine.start(definition, attributes, call_api=call_api, options=OPTIONS)


def answer(
    definition: FlowDef, state: State, text: str, call_api: Any = no_api, options: Options = OPTIONS
) -> engine.Turn:
    return engine.submit(definition, state, text, call_api=call_api, options=options)


def texts(turn: engine.Turn) -> list[str]:
    return [event["text"] for event in turn.events if event["type"] == "text"]


ASK_PHONE = StepDef(id=2, kind="ask", ask_kind="phone", attribute="phone", text="Your number?")
BYE = StepDef(id=9, kind="message", text="Bye")


# --- Running ------------------------------------------------------------------------


def test_it_sends_messages_until_an_ask_step_and_waits_there():
    turn = start(flow(StepDef(id=1, kind="message", text="Hello"), ASK_PHONE, BYE))
    assert turn.events == [
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": "Your number?"},
    ]
    assert turn.expects == "phone"
    assert turn.state.step == 2
    assert not turn.state.finished


def test_it_saves_a_phone_answer_in_e164():
    definition = flow(ASK_PHONE, BYE)
    turn = answer(definition, start(definition).state, "+1 (415) 555-2671")
    assert turn.state.attributes["phone"] == "+14155552671"
    assert texts(turn) == ["Bye"]
    assert turn.state.finished


def test_it_re_asks_an_invalid_phone_with_a_helpful_message():
    definition = flow(ASK_PHONE, BYE)
    turn = answer(definition, start(definition).state, "12345")
    assert turn.expects == "phone"
    assert "country code" in texts(turn)[0]
    assert "phone" not in turn.state.attributes
    assert not turn.state.finished


def test_it_reads_a_national_number_in_the_default_region():
    definition = flow(ASK_PHONE, BYE)
    options = Options(otp_length=6, phone_region="GB")
    turn = answer(definition, start(definition).state, "07400 123456", options=options)
    assert turn.state.attributes["phone"] == "+447400123456"


def test_it_refuses_a_premium_rate_number_and_says_why():
    definition = flow(ASK_PHONE, BYE)
    turn = answer(definition, start(definition).state, "+1 900 555 0123")
    assert turn.expects == "phone"
    assert "premium-rate" in texts(turn)[0]


ASK_CODE = StepDef(id=3, kind="ask", ask_kind="code", attribute="otp_code", text="The code?")
VERIFY = StepDef(id=4, kind="api_call", api=7, branch=9)


def test_it_re_asks_a_code_of_the_wrong_length():
    definition = flow(ASK_CODE, BYE)
    turn = answer(definition, start(definition).state, "12345")
    assert texts(turn) == ["Please type the 6-digit code from the SMS."]
    assert turn.expects == "code"


def test_it_passes_a_code_to_the_api_call_of_the_same_run():
    definition = flow(ASK_CODE, VERIFY, BYE)
    api = FakeApi(Outcome(ok=True, saved={"otp_verified": True}))
    answer(definition, start(definition).state, "123 456", call_api=api)
    assert api.calls == [(7, {"otp_code": "123456"})]


def test_it_never_keeps_a_code_after_the_run_nor_records_it():
    definition = flow(ASK_CODE, VERIFY, BYE)
    api = FakeApi(Outcome(ok=True, saved={"otp_verified": True}))
    turn = answer(definition, start(definition).state, "123456", call_api=api)
    assert "otp_code" not in turn.state.attributes
    assert turn.state.attributes["otp_verified"] is True
    assert turn.recorded_input == engine.REDACTED


def test_it_never_shows_a_code_in_a_message_placeholder():
    shout = StepDef(id=5, kind="message", text="You typed {{otp_code}} for {{ phone }}")
    definition = flow(ASK_CODE, shout)
    turn = answer(definition, State(step=3, attributes={"phone": "+14155552671"}), "123456")
    assert texts(turn) == [f"You typed {engine.REDACTED} for +14155552671"]


ASK_COLOUR = StepDef(
    id=2, kind="ask", ask_kind="choice", attribute="colour", choices=("Red", "Blue")
)


@pytest.mark.parametrize("typed", ["blue", " Blue ", "2"])
def test_it_accepts_a_choice_by_name_or_number(typed):
    definition = flow(ASK_COLOUR, BYE)
    turn = answer(definition, start(definition).state, typed)
    assert turn.state.attributes["colour"] == "Blue"


def test_it_re_asks_a_choice_that_is_not_an_option():
    definition = flow(ASK_COLOUR, BYE)
    turn = answer(definition, start(definition).state, "green")
    assert texts(turn) == ["Please choose one of: Red, Blue."]
    assert turn.expects == "choice"


def test_it_re_asks_an_empty_text_answer():
    definition = flow(StepDef(id=1, kind="ask", ask_kind="text", attribute="name"), BYE)
    turn = answer(definition, start(definition).state, "   ")
    assert texts(turn) == ["Please type an answer."]
    assert turn.expects == "text"


def test_it_re_asks_an_overlong_text_answer():
    definition = flow(StepDef(id=1, kind="ask", ask_kind="text", attribute="name"), BYE)
    turn = answer(definition, start(definition).state, "x" * 10_000)
    assert "under 1000 characters" in texts(turn)[0]


def test_an_api_call_saves_mapped_fields_and_goes_on_when_it_succeeds():
    definition = flow(
        StepDef(id=1, kind="api_call", api=7, branch=8),
        StepDef(id=2, kind="message", text="sent {{otp_id}}"),
        StepDef(id=3, kind="end"),
        StepDef(id=8, kind="message", text="failed"),
    )
    turn = start(definition, FakeApi(Outcome(ok=True, saved={"otp_id": "abc"})))
    assert texts(turn) == ["sent abc"]
    assert turn.state.attributes == {"otp_id": "abc"}


def test_an_api_call_takes_the_error_branch_when_it_fails():
    definition = flow(
        StepDef(id=1, kind="api_call", api=7, branch=8),
        StepDef(id=2, kind="message", text="sent"),
        StepDef(id=3, kind="end"),
        StepDef(id=8, kind="message", text="failed"),
    )
    turn = start(definition, FakeApi(Outcome(ok=False)))
    assert texts(turn) == ["failed"]
    assert turn.state.finished


def test_a_delay_emits_a_delay_event_and_goes_on():
    definition = flow(StepDef(id=1, kind="delay", seconds=5), BYE)
    assert start(definition).events == [
        {"type": "delay", "seconds": 5},
        {"type": "text", "text": "Bye"},
    ]


@pytest.mark.parametrize(
    ("operator", "actual", "value", "holds"),
    [
        ("equals", True, "true", True),
        ("equals", "approved", "Approved ", True),
        ("equals", 3, "3.0", True),
        ("equals", "pending", "approved", False),
        ("not_equals", "pending", "approved", True),
        ("not_equals", None, "approved", True),
        ("is_set", "x", "", True),
        ("is_set", "", "", False),
        ("is_set", None, "", False),
        ("is_empty", None, "", True),
        ("is_empty", False, "", False),
        ("contains", "max_attempts_reached", "attempts", True),
        ("contains", ["a", "b"], "b", True),
        ("contains", "pending", "attempts", False),
        ("greater_than", 5, "3", True),
        ("greater_than", "2", "3", False),
        ("greater_than", "many", "3", False),
        ("less_than", "2.5", "3", True),
        ("matches", "+4474001234", r"^\+44", True),
        ("matches", "+14155552671", r"^\+44", False),
    ],
)
def test_conditions_compare_attribute_values(operator, actual, value, holds):
    assert engine.evaluate(operator, actual, value) is holds


def test_a_condition_branches_on_an_attribute():
    definition = flow(
        StepDef(
            id=1,
            kind="condition",
            attribute="otp_verified",
            operator="equals",
            value="true",
            next=5,
            branch=6,
        ),
        StepDef(id=5, kind="message", text="verified"),
        StepDef(id=4, kind="end"),
        StepDef(id=6, kind="message", text="not verified"),
    )
    assert texts(start(definition, otp_verified=True)) == ["verified"]
    assert texts(start(definition, otp_verified=False)) == ["not verified"]


def test_a_go_to_jumps_to_its_target():
    definition = flow(
        StepDef(id=1, kind="goto", next=3),
        StepDef(id=2, kind="message", text="skipped"),
        StepDef(id=3, kind="message", text="landed"),
    )
    assert texts(start(definition)) == ["landed"]


def test_an_end_step_finishes_the_conversation():
    definition = flow(StepDef(id=1, kind="end"), BYE)
    turn = start(definition)
    assert turn.state.finished
    assert turn.events == []
    assert turn.expects is None


def test_a_loop_without_input_stops_with_a_flow_error():
    definition = flow(
        StepDef(id=1, kind="message", text="again"), StepDef(id=2, kind="goto", next=1)
    )
    turn = start(definition)
    assert turn.error == engine.STEP_LIMIT_EXCEEDED
    assert turn.state.finished
    assert texts(turn)[-1] == engine.FLOW_ERROR_TEXT
    assert len(turn.events) <= engine.MAX_STEPS_PER_RUN + 1


def test_a_conversation_whose_step_was_deleted_ends_with_a_flow_error():
    definition = flow(BYE)
    turn = answer(definition, State(step=2), "+14155552671")
    assert turn.error == engine.STEP_MISSING
    assert turn.state.finished


def test_it_refuses_input_to_a_finished_conversation():
    with pytest.raises(engine.NotWaitingError):
        answer(flow(BYE), State(step=None, finished=True), "hello")


# --- Validation -------------------------------------------------------------------


def test_a_valid_flow_has_no_errors_nor_warnings():
    definition = flow(ASK_PHONE, StepDef(id=3, kind="api_call", api=1, branch=9), BYE)
    report = engine.validate_flow(definition)
    assert report.errors == []
    assert report.warnings == []


def test_validation_finds_targets_outside_the_flow():
    report = engine.validate_flow(flow(StepDef(id=1, kind="goto", next=42)))
    assert report.errors == ["step 1: points to a step that is not in this flow."]


def test_validation_finds_an_api_step_without_an_api():
    report = engine.validate_flow(flow(StepDef(id=1, kind="api_call", branch=2), BYE))
    assert "step 1: An API call step needs an API definition." in report.errors


def test_validation_finds_an_ask_without_an_attribute():
    report = engine.validate_flow(flow(StepDef(id=1, kind="ask", ask_kind="text")))
    assert report.errors == ["step 1: An ask step needs an attribute to save the answer in."]


def test_validation_finds_a_go_to_without_a_target():
    report = engine.validate_flow(flow(StepDef(id=1, kind="goto")))
    assert report.errors == ["step 1: A go-to step needs a step to go to."]


def test_validation_finds_an_invalid_pattern():
    step = StepDef(id=1, kind="condition", attribute="a", operator="matches", value="(")
    assert engine.step_problems(step)[0].startswith("The pattern is not a valid")


def test_validation_warns_about_unreachable_steps():
    definition = flow(
        StepDef(id=1, kind="message", text="hi"),
        StepDef(id=2, kind="end"),
        StepDef(id=3, kind="message", text="orphan", label="3. message"),
    )
    report = engine.validate_flow(definition)
    assert report.errors == []
    assert report.warnings == ["3. message can never be reached."]
