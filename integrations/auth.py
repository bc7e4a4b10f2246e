"""Bots authenticate with an API key; staff with their admin session."""

import re
from typing import Any

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
        prefix = key.partition(".")[0]
        api_key = (
            BotAPIKey.objects.get_usable_keys().select_related("bot").filter(prefix=prefix).first()
        )
        # is_valid() compares hashes in constant time.
        if api_key is None or not api_key.is_valid(key) or api_key.has_expired:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return "Api-Key"


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
