"""One exception handler for the whole API: every error is JSON with a `code`."""

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response

from .exceptions import CACHE_UNAVAILABLE, ProviderError, ServiceError

logger = logging.getLogger(__name__)

# DRF's own codes, renamed to the contract's vocabulary.
DRF_CODES = {
    "not_authenticated": "authentication_failed",
    "authentication_failed": "authentication_failed",
    "parse_error": "invalid_request",
    "invalid": "invalid_request",
    "unsupported_media_type": "unsupported_media_type",
    "throttled": "rate_limited",
    "not_found": "not_found",
    "permission_denied": "permission_denied",
    "method_not_allowed": "method_not_allowed",
    "not_acceptable": "not_acceptable",
}


# URLs bots call: errors there are JSON even when no view answers.
API_PREFIXES = ("/api/", "/integrations/")
GUIDE_PREFIX = "/integrations/custom-feature/"


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, **extra}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceError):
        body = error_body(exc.code, exc.detail)
        if isinstance(exc, ProviderError) and exc.provider_code is not None:
            body["provider_code"] = exc.provider_code
        status = exc.status_code
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, RequestDataTooBig):
        body = error_body("invalid_request", "The request body is too large.")
        status = 413
    elif isinstance(exc, Http404):
        body, status = error_body("not_found", "Not found."), 404
    elif isinstance(exc, PermissionDenied):
        body, status = error_body("permission_denied", "Permission denied."), 403
    elif isinstance(exc, drf.ValidationError):
        body = error_body("invalid_request", "Invalid input.", errors=_field_errors(exc.detail))
        status = 400
    elif isinstance(exc, drf.APIException):
        codes = exc.get_codes()
        code = DRF_CODES.get(codes if isinstance(codes, str) else "", "invalid_request")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        body, status = error_body(code, str(detail)), exc.status_code
        wait = getattr(exc, "wait", None) if isinstance(exc, drf.Throttled) else None
        if wait is not None:
            headers["Retry-After"] = str(math.ceil(wait))
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    elif isinstance(exc, OperationalError | InterfaceError):
        # The database refused or lost the connection ("too many clients", a
        # restart), or a lock or statement timed out: the open transaction has
        # rolled back, and trying again shortly may work. Logged without the
        # message, which may quote the statement.
        logger.error(
            "Database unavailable: %s (SQLSTATE %s)",
            type(exc.__cause__ or exc).__name__,
            getattr(exc.__cause__, "sqlstate", None) or "-",
        )
        body = error_body("database_unavailable", "The service is busy. Try again shortly.")
        status = 503
        headers["Retry-After"] = "1"
    elif isinstance(exc, CACHE_UNAVAILABLE):
        # Redis, which holds the per-bot send counts, is down or too slow: a
        # send cannot be counted, so it is refused (fails closed) before any
        # provider is called.
        logger.error("Cache unavailable: %s", type(exc).__name__)
        body = error_body("cache_unavailable", "The service is busy. Try again shortly.")
        status = 503
        headers["Retry-After"] = "1"
    else:
        # Unknown errors stay real errors: Django logs them and answers 500.
        return None

    view = context.get("view")
    if getattr(view, "guide_style_errors", False):
        # The guide's endpoints answer errors with `success: false` and `message`.
        body = {"success": False, "message": body["detail"], **body}
    return Response(body, status=status, headers=headers)


def _field_errors(detail: Any) -> Any:
    """Flatten DRF's ErrorDetail lists into plain strings."""
    if isinstance(detail, dict):
        return {key: _field_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_field_errors(item) for item in detail]
    return str(detail)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON under the API's prefixes, Django's page elsewhere (the admin)."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a bot gets JSON with a code even from a bug; the error is logged as usual."""
    if request.path.startswith(API_PREFIXES):
        body = error_body("server_error", "Something went wrong on our side.")
        if request.path.startswith(GUIDE_PREFIX):
            body = {"success": False, "message": body["detail"], **body}
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
