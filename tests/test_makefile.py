"""The Makefile: an old Python refused up front; `make run` on another HOST or PORT."""

import os
import shutil
import subprocess
import sys
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


# Says it is Python 3.10 when asked for its version; does nothing else (never makes a venv).
OLD_PYTHON = """#!/bin/sh
[ "$1" = "-c" ] || { echo "only -c here" >&2; exit 3; }
exec {python} -c 'import collections, sys
V = collections.namedtuple("V", "major minor micro releaselevel serial")
sys.version_info = V(3, 10, 13, "final", 0)
exec(sys.argv[1])' "$2"
"""


def test_make_refuses_a_python_older_than_3_11_before_making_a_venv(tmp_path):
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    old_python = tmp_path / "python3.10"
    old_python.write_text(OLD_PYTHON.replace("{python}", sys.executable))
    old_python.chmod(0o755)

    result = subprocess.run(
        ["make", "install", f"PYTHON={old_python}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert f"chatbot-auth needs Python 3.11 or newer, and {old_python} is 3.10" in result.stderr
    assert not (tmp_path / ".venv").exists()
