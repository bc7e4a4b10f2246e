"""export_config / import_config: the setup as JSON, secrets never included, imports idempotent."""

import json

import pytest
from django.core.management import CommandError, call_command

from integrations.models import ApiDefinition, ApiHeader, CustomAttribute

from .developer_helpers import attribute, definition

SECRET = "Api-Key abc.TopSecretValue4321"

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    attribute("phone", "phone")
    return definition(
        "https://api.example.com/otp",
        name="Send OTP",
        body={"toNumber": "{{phone}}"},
        secret_headers={"Authorization": SECRET},
        mappings={"systemOtp": "otp_id", "status": "http_status"},
    )


def export(capsys) -> dict:
    call_command("export_config")
    return json.loads(capsys.readouterr().out)


def run_import(tmp_path, data, capsys) -> str:
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(data))
    call_command("import_config", str(path))
    return capsys.readouterr().out


def test_export_holds_attributes_and_definitions(setup, capsys):
    data = export(capsys)
    assert {a["name"] for a in data["attributes"]} == {"phone", "otp_id", "http_status"}
    (api,) = data["api_definitions"]
    assert api["url"] == "https://api.example.com/otp"
    assert api["body_params"] == [{"key": "toNumber", "value": "{{phone}}"}]
    assert api["headers"] == [{"key": "Authorization", "is_secret": True}]
    assert api["response_mappings"][0] == {
        "source": "json",
        "path": "systemOtp",
        "attribute": "otp_id",
    }


def test_export_never_contains_a_secret(setup, capsys, tmp_path):
    call_command("export_config", "--output", str(tmp_path / "out.json"))
    text = (tmp_path / "out.json").read_text()
    assert "Send OTP" in text
    assert "TopSecretValue" not in text
    assert "4321" not in text


def test_import_into_an_empty_database_creates_everything(setup, capsys, tmp_path):
    data = export(capsys)
    ApiDefinition.objects.all().delete()
    CustomAttribute.objects.all().delete()
    out = run_import(tmp_path, data, capsys)
    assert "4 created, 0 changed, 0 unchanged." in out
    assert "set secret Authorization in the admin" in out
    api = ApiDefinition.objects.get(name="Send OTP")
    header = api.headers.get()
    assert (header.is_secret, header.secret_value) == (True, "")
    assert api.response_mappings.count() == 2


def test_importing_the_same_file_twice_changes_nothing(setup, capsys, tmp_path):
    data = export(capsys)
    out = run_import(tmp_path, data, capsys)
    assert "0 created, 0 changed, 4 unchanged." in out
    assert export(capsys) == data


def test_import_reports_a_changed_definition_and_keeps_its_secret(setup, capsys, tmp_path):
    data = export(capsys)
    data["api_definitions"][0]["timeout"] = 20
    out = run_import(tmp_path, data, capsys)
    assert "changed api_definition 'Send OTP'" in out
    assert ApiDefinition.objects.get().timeout == 20
    assert ApiHeader.objects.get().secret_value == SECRET


def test_import_refuses_an_unknown_placeholder_and_imports_nothing(capsys, tmp_path):
    data = {
        "attributes": [{"name": "phone", "type": "phone"}],
        "api_definitions": [
            {
                "name": "Bad",
                "method": "POST",
                "url": "https://api.example.com/",
                "body_params": [{"key": "x", "value": "{{nope}}"}],
            }
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CommandError, match='Unknown attribute "nope"'):
        call_command("import_config", str(path))
    assert not CustomAttribute.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"version": 9}', "Unknown format version"),
        ('{"attributes": [{"type": "text"}]}', "has no name"),
        ('{"api_definitions": [{"name": "x", "method": "GET", "url": "ftp://x"}]}', "http"),
    ],
)
def test_import_refuses_bad_files_with_a_clear_message(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(CommandError, match=message):
        call_command("import_config", str(path))


def test_import_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_config", str(tmp_path / "nothing.json"))
