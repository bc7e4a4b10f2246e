"""Write a `.env` with freshly generated secrets for a local install.

Run as `python -m config.envfile` (the Makefile does, when there is no .env).
It imports nothing from Django: settings cannot load before the secrets exist.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent

LOCAL_OVERRIDES = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "OTP_PEPPER": lambda: secrets.token_urlsafe(32),
    "FIELD_ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
    # The local server speaks plain HTTP on 127.0.0.1.
    "SECURE_SSL_REDIRECT": lambda: "False",
    "SESSION_COOKIE_SECURE": lambda: "False",
    "CSRF_COOKIE_SECURE": lambda: "False",
    "SECURE_HSTS_SECONDS": lambda: "0",
}


def render(template: str) -> str:
    lines = []
    for line in template.splitlines():
        name, sep, _ = line.partition("=")
        if sep and not line.startswith("#") and name in LOCAL_OVERRIDES:
            line = f"{name}={LOCAL_OVERRIDES[name]()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    target = BASE_DIR / ".env"
    if target.exists():
        print(".env exists; leaving it as it is.")
        return 0
    target.write_text(render((BASE_DIR / ".env.example").read_text()))
    target.chmod(0o600)
    print("Wrote .env with freshly generated secrets.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
