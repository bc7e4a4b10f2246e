"""The chat-flow engine: a flow definition and a conversation's state in, new state and events out.

Pure on purpose: no ORM and no network here. The runner (`runner.py`) loads and
locks the conversation, hands the engine a `call_api` callable for API-call
steps, and saves what comes back; so every rule below is testable without a
database.
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from integrations.exceptions import CountryNotAllowedError, InvalidPhoneNumberError
from integrations.phones import normalize_phone

# Step kinds.
MESSAGE = "message"
ASK = "ask"
API_CALL = "api_call"
DELAY = "delay"
CONDITION = "condition"
GOTO = "goto"
END = "end"
KINDS = (MESSAGE, ASK, API_CALL, DELAY, CONDITION, GOTO, END)

# What an ask step expects.
PHONE = "phone"
CODE = "code"
TEXT = "text"
CHOICE = "choice"
ASK_KINDS = (PHONE, CODE, TEXT, CHOICE)

# Condition operators.
EQUALS = "equals"
NOT_EQUALS = "not_equals"
IS_SET = "is_set"
IS_EMPTY = "is_empty"
CONTAINS = "contains"
GREATER_THAN = "greater_than"
LESS_THAN = "less_than"
MATCHES = "matches"
OPERATORS = (EQUALS, NOT_EQUALS, IS_SET, IS_EMPTY, CONTAINS, GREATER_THAN, LESS_THAN, MATCHES)
OPERATORS_WITHOUT_VALUE = (IS_SET, IS_EMPTY)

# A run that passes this many steps without stopping for input is a loop.
MAX_STEPS_PER_RUN = 100
MAX_DELAY_SECONDS = 600
MAX_TEXT_ANSWER = 1000
# Regular expressions are matched against at most this much text, so a
# pathological pattern cannot take long.
MAX_MATCH_INPUT = 1000

STEP_LIMIT_EXCEEDED = "step_limit_exceeded"
STEP_MISSING = "step_missing"
FLOW_ERROR_TEXT = "Sorry, something went wrong on our side. This conversation has ended."
# What a code answer looks like in a transcript and in message placeholders.
REDACTED = "••••••"

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_-]+)\s*\}\}")


@dataclass(frozen=True)
class StepDef:
    """One step. `next` is None for "the following step in order"; `branch` is
    where a condition goes when false and where an API call goes on error."""

    id: int
    kind: str
    text: str = ""
    ask_kind: str = ""
    attribute: str = ""
    choices: tuple[str, ...] = ()
    api: int | None = None
    seconds: int = 0
    operator: str = ""
    value: str = ""
    next: int | None = None
    branch: int | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"step {self.id}"


# Stands for a target that is not in the flow (deleted since): the run fails.
_MISSING = StepDef(id=-1, kind="missing")


@dataclass(frozen=True)
class FlowDef:
    steps: tuple[StepDef, ...]
    first: int | None = None

    def step(self, step_id: int | None) -> StepDef | None:
        return next((step for step in self.steps if step.id == step_id), None)

    def first_step(self) -> StepDef | None:
        if self.first is not None:
            return self.step(self.first)
        return self.steps[0] if self.steps else None

    def following(self, step: StepDef) -> StepDef | None:
        index = self.steps.index(step)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None

    def secret_attributes(self) -> set[str]:
        """Attributes that hold a one-time code: never stored, never shown."""
        return {s.attribute for s in self.steps if s.kind == ASK and s.ask_kind == CODE}


@dataclass
class State:
    """Where a conversation stands: the ask step it waits on, or finished."""

    step: int | None
    attributes: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


@dataclass(frozen=True)
class Options:
    otp_length: int = 6
    phone_region: str | None = None


class ApiOutcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def saved(self) -> Mapping[str, Any]: ...


CallApi = Callable[[StepDef, Mapping[str, Any]], ApiOutcome]


@dataclass
class Turn:
    """The result of starting a conversation or answering it."""

    state: State
    events: list[dict[str, Any]] = field(default_factory=list)
    # The step the conversation now waits on, for `expects` and `choices`.
    waiting: StepDef | None = None
    # The user's input as it may be recorded (a code is redacted).
    recorded_input: str | None = None
    error: str = ""

    @property
    def expects(self) -> str | None:
        return self.waiting.ask_kind if self.waiting else None


class NotWaitingError(Exception):
    """Input was given to a conversation that is not waiting for any."""


class InvalidAnswerError(Exception):
    """The answer does not fit the ask step; `message` tells the user what would."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Running ---------------------------------------------------------------------


def start(
    flow: FlowDef, attributes: Mapping[str, Any], *, call_api: CallApi, options: Options
) -> Turn:
    """Run a new conversation from the flow's first step until it needs input or ends."""
    turn = Turn(state=State(step=None, attributes=dict(attributes)))
    first = flow.first_step()
    if first is None:
        _fail(turn, STEP_MISSING)
    else:
        _run(flow, turn, first, call_api=call_api)
    _forget_secrets(flow, turn.state)
    return turn


def submit(flow: FlowDef, state: State, text: str, *, call_api: CallApi, options: Options) -> Turn:
    """Answer the ask step the conversation waits on, then run on."""
    if state.finished:
        raise NotWaitingError()
    turn = Turn(state=State(step=state.step, attributes=dict(state.attributes)))
    step = flow.step(state.step)
    if step is None or step.kind != ASK:
        # The step was deleted or changed since the conversation reached it.
        turn.recorded_input = text
        _fail(turn, STEP_MISSING)
        return turn
    turn.recorded_input = REDACTED if step.ask_kind == CODE and text.strip() else text
    try:
        value = parse_answer(step, text, options=options)
    except InvalidAnswerError as exc:
        turn.events.append(_text(exc.message))
        turn.waiting = step
        return turn
    turn.state.attributes[step.attribute] = value
    _run(flow, turn, _after(flow, step, step.next), call_api=call_api)
    _forget_secrets(flow, turn.state)
    return turn


def _run(flow: FlowDef, turn: Turn, step: StepDef | None, *, call_api: CallApi) -> None:
    attributes = turn.state.attributes
    secrets = flow.secret_attributes()
    for _ in range(MAX_STEPS_PER_RUN):
        if step is None:
            _finish(turn)
            return
        if step is _MISSING:
            _fail(turn, STEP_MISSING)
            return
        if step.kind == MESSAGE:
            turn.events.append(_text(fill_placeholders(step.text, attributes, secrets=secrets)))
            step = _after(flow, step, step.next)
        elif step.kind == ASK:
            if step.text:
                turn.events.append(_text(fill_placeholders(step.text, attributes, secrets=secrets)))
            turn.state.step = step.id
            turn.waiting = step
            return
        elif step.kind == API_CALL:
            outcome = call_api(step, dict(attributes))
            attributes.update(outcome.saved)
            step = _after(flow, step, step.next if outcome.ok else step.branch)
        elif step.kind == DELAY:
            turn.events.append({"type": "delay", "seconds": step.seconds})
            step = _after(flow, step, step.next)
        elif step.kind == CONDITION:
            holds = evaluate(step.operator, attributes.get(step.attribute), step.value)
            step = _after(flow, step, step.next if holds else step.branch)
        elif step.kind == GOTO:
            if step.next is None:
                _fail(turn, STEP_MISSING)
                return
            step = _after(flow, step, step.next)
        else:  # END, or a kind this engine does not know: stop rather than guess.
            _finish(turn)
            return
    _fail(turn, STEP_LIMIT_EXCEEDED)


def _after(flow: FlowDef, step: StepDef, target: int | None) -> StepDef | None:
    """The step `target` names, or the following one when it names none."""
    if target is None:
        return flow.following(step)
    found = flow.step(target)
    # A target outside the flow ends the conversation with an error, in _run's
    # next round, rather than silently skipping ahead.
    return found if found is not None else _MISSING


def _finish(turn: Turn) -> None:
    turn.state.finished = True
    turn.state.step = None
    turn.waiting = None


def _fail(turn: Turn, code: str) -> None:
    turn.events.append(_text(FLOW_ERROR_TEXT))
    turn.error = code
    _finish(turn)


def _forget_secrets(flow: FlowDef, state: State) -> None:
    # A code is only needed by the steps of the run it was typed in (the
    # Verify OTP call); it is never stored or sent back.
    for name in flow.secret_attributes():
        state.attributes.pop(name, None)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


# --- Answers, conditions, placeholders ---------------------------------------------


def parse_answer(step: StepDef, text: str, *, options: Options) -> Any:
    """The value an ask step saves for `text`, or InvalidAnswerError with what to type."""
    answer = text.strip()
    if step.ask_kind == PHONE:
        try:
            e164, _ = normalize_phone(answer, region=options.phone_region)
        except (InvalidPhoneNumberError, CountryNotAllowedError) as exc:
            raise InvalidAnswerError(
                f"{exc.detail} Please type your mobile number with its country code, "
                "for example +1 415 555 2671."
            ) from exc
        return e164
    if step.ask_kind == CODE:
        digits = re.sub(r"[\s-]", "", answer)
        if len(digits) != options.otp_length or not (digits.isascii() and digits.isdigit()):
            raise InvalidAnswerError(
                f"Please type the {options.otp_length}-digit code from the SMS."
            )
        return digits
    if step.ask_kind == CHOICE:
        for number, choice in enumerate(step.choices, start=1):
            if answer.casefold() == choice.casefold() or answer == str(number):
                return choice
        raise InvalidAnswerError("Please choose one of: " + ", ".join(step.choices) + ".")
    if not answer:
        raise InvalidAnswerError("Please type an answer.")
    if len(answer) > MAX_TEXT_ANSWER:
        raise InvalidAnswerError(f"Please keep your answer under {MAX_TEXT_ANSWER} characters.")
    return answer


def evaluate(operator: str, actual: Any, expected: str) -> bool:
    """Whether a condition holds for an attribute's value."""
    shown = as_text(actual)
    if operator == IS_SET:
        return shown != ""
    if operator == IS_EMPTY:
        return shown == ""
    if operator == EQUALS:
        return _equal(shown, expected)
    if operator == NOT_EQUALS:
        return not _equal(shown, expected)
    if operator == CONTAINS:
        if isinstance(actual, list | tuple):
            return any(_equal(as_text(item), expected) for item in actual)
        return expected.strip().casefold() in shown.casefold()
    if operator in (GREATER_THAN, LESS_THAN):
        left, right = _number(shown), _number(expected)
        if left is None or right is None:
            return False
        return left > right if operator == GREATER_THAN else left < right
    if operator == MATCHES:
        try:
            return re.search(expected, shown[:MAX_MATCH_INPUT]) is not None
        except re.error:
            return False
    return False


def as_text(value: Any) -> str:
    """An attribute value as a person would write it: true, 42, +14155552671."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _equal(shown: str, expected: str) -> bool:
    left, right = _number(shown), _number(expected)
    if left is not None and right is not None:
        return left == right
    # Staff type "True" or "approved " in the admin; neither case nor stray
    # spaces should change the branch taken.
    return shown.strip().casefold() == expected.strip().casefold()


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def fill_placeholders(text: str, attributes: Mapping[str, Any], *, secrets: set[str]) -> str:
    """Replace `{{name}}` with the attribute's value; a code is never shown."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return REDACTED if name in secrets else as_text(attributes.get(name))

    return PLACEHOLDER.sub(value, text)


# --- Validation (shared by the admin and the runner) --------------------------------


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def step_problems(step: StepDef) -> list[str]:
    """What is wrong with one step on its own."""
    problems: list[str] = []
    if step.kind not in KINDS:
        return [f"Unknown step kind {step.kind!r}."]
    if step.kind == MESSAGE and not step.text.strip():
        problems.append("A message step needs a text.")
    if step.kind == ASK:
        if not step.attribute:
            problems.append("An ask step needs an attribute to save the answer in.")
        if step.ask_kind not in ASK_KINDS:
            problems.append("Choose what the ask step expects: phone, code, text or choice.")
        if step.ask_kind == CHOICE and not step.choices:
            problems.append("A choice needs at least one option, one per line.")
    if step.kind == API_CALL:
        if step.api is None:
            problems.append("An API call step needs an API definition.")
        if step.branch is None:
            problems.append("An API call step needs a step to go to on error.")
    if step.kind == DELAY and not 1 <= step.seconds <= MAX_DELAY_SECONDS:
        problems.append(f"A delay lasts from 1 to {MAX_DELAY_SECONDS} seconds.")
    if step.kind == CONDITION:
        problems.extend(_condition_problems(step))
    if step.kind == GOTO and step.next is None:
        problems.append("A go-to step needs a step to go to.")
    return problems


def _condition_problems(step: StepDef) -> list[str]:
    problems: list[str] = []
    if not step.attribute:
        problems.append("A condition needs an attribute to test.")
    if step.operator not in OPERATORS:
        problems.append("A condition needs an operator.")
    elif step.operator not in OPERATORS_WITHOUT_VALUE and step.value == "":
        problems.append("This condition needs a value to compare with.")
    elif step.operator in (GREATER_THAN, LESS_THAN) and _number(step.value) is None:
        problems.append("Greater than and less than compare with a number.")
    elif step.operator == MATCHES:
        try:
            re.compile(step.value)
        except re.error as exc:
            problems.append(f"The pattern is not a valid regular expression: {exc}.")
    return problems


def validate_flow(flow: FlowDef) -> Report:
    """Errors that stop a flow from being saved, and warnings (unreachable steps)."""
    report = Report()
    if not flow.steps:
        report.errors.append("A flow needs at least one step.")
        return report
    if flow.first is not None and flow.step(flow.first) is None:
        report.errors.append("The first step is not a step of this flow.")
    for step in flow.steps:
        report.errors.extend(f"{step.name}: {problem}" for problem in step_problems(step))
        for target in (step.next, step.branch):
            if target is not None and flow.step(target) is None:
                report.errors.append(f"{step.name}: points to a step that is not in this flow.")
    reachable = _reachable(flow)
    report.warnings.extend(
        f"{step.name} can never be reached." for step in flow.steps if step.id not in reachable
    )
    return report


def _reachable(flow: FlowDef) -> set[int]:
    seen: set[int] = set()
    first = flow.first_step()
    pending = [first] if first else []
    while pending:
        step = pending.pop()
        if step.id in seen:
            continue
        seen.add(step.id)
        for target in _successors(flow, step):
            if target is not None and target.id not in seen:
                pending.append(target)
    return seen


def _successors(flow: FlowDef, step: StepDef) -> list[StepDef | None]:
    if step.kind == END:
        return []
    if step.kind == GOTO:
        return [flow.step(step.next)]
    targets = [flow.step(step.next) if step.next is not None else flow.following(step)]
    if step.kind in (CONDITION, API_CALL):
        targets.append(flow.step(step.branch) if step.branch is not None else flow.following(step))
    return targets
