"""LOG_FORMAT: readable lines by default, one JSON object per line for a log collector."""

import json

from tests.otp_helpers import run_with_settings, startup_failure

LOGS = """
import logging, django
django.setup()
log = logging.getLogger("integrations.twilio")
log.warning("Twilio refused a message to %s: HTTP %s", "+1415****2671", 400)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("Ünexpected")
"""


def test_json_lines_carry_the_level_logger_message_and_traceback():
    result = run_with_settings(LOGS, LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stderr.splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "integrations.twilio"
    assert first["message"] == "Twilio refused a message to +1415****2671: HTTP 400"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "Ünexpected"
    assert "ZeroDivisionError" in second["exception"]


def test_plain_lines_are_the_default():
    result = run_with_settings(LOGS)

    assert result.returncode == 0, result.stderr
    assert " WARNING integrations.twilio Twilio refused a message to +1415****2671: HTTP 400" in (
        result.stderr
    )


def test_an_unknown_log_format_is_refused_at_startup():
    assert "LOG_FORMAT must be plain or json, not 'xml'." in startup_failure(LOG_FORMAT="xml")
