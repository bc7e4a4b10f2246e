"""The Makefile: `make run` served on another HOST or PORT, and the demo follows it."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def public_base_url(*arguments: str, **environment: str) -> str:
    """The PUBLIC_BASE_URL that the Makefile gives `make run`'s commands, in brackets."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HOST", "PORT", "PUBLIC_BASE_URL", "MAKEFLAGS")
    }
    env.update(environment)
    shown = subprocess.run(
        ["make", "-s", "--eval", 'show-url: ; @echo "[$$PUBLIC_BASE_URL]"', "show-url", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.strip()


def test_the_demo_follows_the_port_or_host_it_is_served_on():
    assert public_base_url("PORT=8010") == "[http://127.0.0.1:8010]"
    assert public_base_url(PORT="8020") == "[http://127.0.0.1:8020]"
    assert public_base_url("HOST=192.168.1.20") == "[http://192.168.1.20:8000]"


def test_on_the_default_host_and_port_the_env_file_decides():
    assert public_base_url() == "[]"


def test_a_public_base_url_in_the_environment_wins():
    given = "https://bot.example.com"
    assert public_base_url("PORT=8010", PUBLIC_BASE_URL=given) == f"[{given}]"
