"""A per-bot cap on sends, on top of the per-phone limits and the day's cap.

The per-phone limits stop one number being flooded; this stops one bot (or a
leaked key) sending to many numbers at once and spending the whole day's cap
that other bots share.
"""

import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from .auth import bot_of
from .exceptions import RateLimitedError

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
        now = time.time()
        window = int(now // seconds)
        # The window's number is part of the key, so a count never outlives its
        # window even where the cache's own expiry runs on another clock.
        key = f"bot-sends:{bot.pk}:{seconds}:{window}"
        sent = _count_one(key, timeout=seconds + 60)
        if sent > count:
            # Our error rather than DRF's Throttled, to say what was capped.
            raise RateLimitedError(
                "This bot has sent too many codes. Try again later.",
                retry_after=math.ceil((window + 1) * seconds - now),
            )
        return True


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
