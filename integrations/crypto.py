"""Encryption at rest for secrets (API-definition secrets, per-request Twilio tokens).

Keys come from FIELD_ENCRYPTION_KEYS, newest first: new values are encrypted
with the first key, and any listed key decrypts, so keys can be rotated with
`manage.py rotate_encryption_keys` before an old key is dropped.

A value no listed key decrypts (a key was dropped before rotating) is read as
an `UnreadableSecret` instead of failing the query: the rows around it stay
usable, the secret itself reads as empty, and saving the row keeps its
ciphertext, so adding the old key back recovers it.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _development_key() -> str:
    # Only reachable with DEBUG=True and no keys configured (settings refuse
    # that combination in production): derive a stable key from SECRET_KEY.
    digest = hashlib.sha256(("field-encryption:" + settings.SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def get_fernet() -> MultiFernet:
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS) or (_development_key(),)
    return _fernet_for(keys)


def encrypt(value: str) -> str:
    return get_fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return get_fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("No configured key decrypts this value.") from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    try:
        return get_fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("No configured key decrypts this value.") from exc


class UnreadableSecret(str):
    """A stored secret that no configured key decrypts.

    It equals "" (so code that does not know about it treats the secret as
    missing, never as a usable value) and carries the stored token, which
    EncryptedTextField writes back unchanged.
    """

    token: str

    def __new__(cls, token: str) -> "UnreadableSecret":
        secret = super().__new__(cls, "")
        secret.token = token
        return secret

    def __getnewargs__(self) -> tuple[str]:
        # Copies and pickles (the admin deep-copies instances) keep the token.
        return (self.token,)

    def __repr__(self) -> str:
        return "UnreadableSecret(…)"


def is_unreadable(value: object) -> bool:
    return isinstance(value, UnreadableSecret)


def mask_secret(value: str) -> str:
    """`••••` plus the last four characters, as the admin shows a secret."""
    return "••••" + value[-4:] if len(value) > 8 else "••••"


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the clear value.

    The empty string is stored as is, so "no secret" needs no decryption. A
    token no configured key decrypts is read as an UnreadableSecret (a page
    listing such rows must not fail) and written back as the same token.
    """

    def from_db_value(
        self, value: str | None, expression: object, connection: object
    ) -> str | None:
        if not value:
            return value
        try:
            return decrypt(value)
        except DecryptionError:
            return UnreadableSecret(value)

    def get_prep_value(self, value: object) -> object:
        if isinstance(value, UnreadableSecret):
            # Saving a row without a new secret must not destroy the old one.
            return value.token
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(str(value))
