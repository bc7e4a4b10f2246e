"""`/healthz` for load balancers and monitors, answered before the Host header is checked.

Load balancers and orchestrators probe a node at its own address (`Host:
10.0.3.7`), which ALLOWED_HOSTS rightly refuses with a 400, and often over plain
HTTP, which SECURE_SSL_REDIRECT would redirect. So the check is a middleware
placed first, not a view: the probe gets its answer, and nothing else skips a
check.
"""

from collections.abc import Callable

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

from .exceptions import CACHE_UNAVAILABLE

PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != PATH:
            return self.get_response(request)
        # GET and HEAD: some load balancers probe with HEAD.
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return health_response()


def health_response() -> JsonResponse:
    """Whether the database and the cache answer; 503 when either does not.

    Both are needed to send a code (the cache holds each bot's send count).
    """
    report = {"database": _answers(_ping_database), "cache": _answers(_ping_cache)}
    healthy = all(state == "ok" for state in report.values())
    body = {"status": "ok" if healthy else "error", **report}
    return JsonResponse(body, status=200 if healthy else 503)


def _ping_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _ping_cache() -> None:
    cache.get("healthz")


UNREACHABLE: tuple[type[Exception], ...] = (DatabaseError, *CACHE_UNAVAILABLE)


def _answers(ping: Callable[[], None]) -> str:
    try:
        ping()
    except UNREACHABLE:
        return "unreachable"
    return "ok"
