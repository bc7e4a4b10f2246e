"""Caps counted in the cache: a bot's sends, and failed staff logins per username.

The per-phone limits stop one number being flooded; the per-bot cap stops one
bot (or a leaked key) sending to many numbers at once and spending the whole
day's cap that other bots share. The staff login cap stops password guessing
against an admin account.
"""

import contextlib
import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from .auth import bot_of
from .exceptions import CACHE_UNAVAILABLE, RateLimitedError

logger = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """`"60/minute"` → (60, 60); empty → None (no cap). The settings check the shape."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period]


class BotSendRateThrottle(BaseThrottle):
    """At most BOT_SEND_RATE sends (new verifications and resends) per bot, or RateLimitedError.

    Counted per fixed window with the cache's incr: Redis's atomic INCR when
    REDIS_URL is set, so workers on any number of nodes share one count, and
    otherwise the database cache's, which locks the count's row (config.cache).
    Staff sessions are not capped.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = parse_rate(settings.BOT_SEND_RATE)
        bot = bot_of(request)
        if limit is None or bot is None:
            return True
        count, seconds = limit
        window, left = _current_window(seconds)
        key = f"bot-sends:{bot.pk}:{seconds}:{window}"
        sent = _count_one(key, timeout=seconds + 60)
        if sent > count:
            # Our error rather than DRF's Throttled, to say what was capped.
            raise RateLimitedError(
                "This bot has sent too many codes. Try again later.", retry_after=left
            )
        return True


def _current_window(seconds: int) -> tuple[int, int]:
    """The number of the current fixed window of `seconds`, and the whole seconds left in it.

    The window's number is part of a count's key, so a count never outlives its
    window even where the cache's own expiry runs on another clock.
    """
    now = time.time()
    window = int(now // seconds)
    return window, math.ceil((window + 1) * seconds - now)


def _count_one(key: str, *, timeout: int) -> int:
    """Add one to the count at `key` and return it; the count starts at 1.

    Increments first: only a window's first send pays for creating the key.
    """
    try:
        return cache.incr(key)
    except ValueError:  # no count yet in this window
        if cache.add(key, 1, timeout=timeout):
            return 1
    try:
        return cache.incr(key)  # another send created it first
    except ValueError:  # and the cache evicted it since: start again
        cache.set(key, 1, timeout=timeout)
        return 1


# --- Failed staff logins ------------------------------------------------------------


def staff_login_wait(username: str) -> int:
    """Seconds before `username` may try to log in again; 0 when it may now.

    A username is refused for the rest of a STAFF_LOGIN_LOCK_SECONDS window
    once STAFF_LOGIN_MAX_FAILURES logins to it failed in that window, whether
    an account has that name or not (the answer tells nothing about which exist).
    Without a cache to read, logins are allowed: a Redis outage must not lock
    staff out of the admin.
    """
    limit = settings.STAFF_LOGIN_MAX_FAILURES
    if not limit:
        return 0
    key, remaining = _failed_logins_key(username)
    try:
        failures = cache.get(key, 0)
    except CACHE_UNAVAILABLE as exc:
        logger.warning("Failed staff logins not checked: no cache (%s)", type(exc).__name__)
        return 0
    return remaining if failures >= limit else 0


def count_failed_staff_login(username: str) -> None:
    if not settings.STAFF_LOGIN_MAX_FAILURES:
        return
    key, remaining = _failed_logins_key(username)
    try:
        _count_one(key, timeout=remaining + 60)
    except CACHE_UNAVAILABLE as exc:
        logger.warning("Failed staff login not counted: no cache (%s)", type(exc).__name__)


def forget_failed_staff_logins(username: str) -> None:
    """A successful login clears the username's count."""
    key, _ = _failed_logins_key(username)
    with contextlib.suppress(*CACHE_UNAVAILABLE):  # then nothing was counted either
        cache.delete(key)


def _failed_logins_key(username: str) -> tuple[str, int]:
    """The cache key counting `username`'s failures in the current window, and the window's rest.

    The name is hashed: the cache holds no usernames, and keys stay short and plain.
    """
    window, left = _current_window(settings.STAFF_LOGIN_LOCK_SECONDS)
    digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    return f"staff-login-failures:{digest}:{window}", left
