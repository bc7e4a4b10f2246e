"""Bots authenticate with an API key; staff with their admin session."""

import hashlib
import re
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from .models import Bot, BotAPIKey

KEYWORDS = ("api-key", "bearer")

# `<prefix>.<secret>`, both alphanumeric, as djangorestframework-api-key makes
# them. Anything else is refused before it reaches a query: a NUL byte in a
# header would otherwise make PostgreSQL raise instead of answering 401.
KEY_SHAPE = re.compile(r"[A-Za-z0-9]{1,16}\.[A-Za-z0-9]{1,128}")

# Keys this process has validated lately: SHA-256 of the full key -> (when, key).
# Only keys that passed every check get in, so a hit proves the caller holds
# the whole key. Bounded: a bot platform uses a handful of keys.
_validated: dict[bytes, tuple[float, BotAPIKey]] = {}
MAX_VALIDATED_KEYS = 1000


class BotAPIKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>` (or `Bearer <key>`); `request.auth` is the key."""

    def authenticate(self, request: Request) -> tuple[Any, BotAPIKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, key = header.strip().partition(" ")
        if keyword.lower() not in KEYWORDS:
            return None
        key = key.strip()
        if not KEY_SHAPE.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return AnonymousUser(), validated_key(key)

    def authenticate_header(self, request: Request) -> str:
        return "Api-Key"


def validated_key(key: str) -> BotAPIKey:
    """The usable key `key` (with its bot), or AuthenticationFailed.

    A key validated within API_KEY_CACHE_SECONDS is taken from this process's
    memory instead of the database: authentication then costs no query.
    """
    digest = hashlib.sha256(key.encode()).digest()
    cached = _validated.get(digest)
    if cached is not None:
        validated_at, api_key = cached
        if 0 <= time.time() - validated_at < settings.API_KEY_CACHE_SECONDS:
            if api_key.has_expired:
                raise exceptions.AuthenticationFailed("Invalid API key.")
            return api_key
    prefix = key.partition(".")[0]
    found = BotAPIKey.objects.get_usable_keys().select_related("bot").filter(prefix=prefix).first()
    # is_valid() compares hashes in constant time.
    if found is None or not found.is_valid(key) or found.has_expired:
        _validated.pop(digest, None)
        raise exceptions.AuthenticationFailed("Invalid API key.")
    if len(_validated) >= MAX_VALIDATED_KEYS:
        _validated.clear()
    _validated[digest] = (time.time(), found)
    return found


def forget_validated_keys(**kwargs: object) -> None:
    """Drop every remembered key: a key or bot was changed or deleted.

    Connected to the save and delete signals of keys and bots, so a key
    revoked in the admin stops working in this process at once.
    """
    _validated.clear()


class BotAPIKeyScheme(OpenApiAuthenticationExtension):
    """Describes the API key in the OpenAPI schema, so /api/docs/ can send it."""

    target_class = BotAPIKeyAuthentication
    name = "BotAPIKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>` (or `Bearer <key>`), a key of the calling bot.",
        }


class IsBotOrStaff(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, BotAPIKey) or bool(request.user and request.user.is_staff)


def bot_of(request: Request) -> Bot | None:
    """The calling bot, or None for a staff session (which may see every bot's data)."""
    return request.auth.bot if isinstance(request.auth, BotAPIKey) else None
