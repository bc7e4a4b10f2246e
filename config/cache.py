"""The caches: Django's Redis and database caches, each with an incr that loses no count.

Both count each bot's sends and each username's failed staff logins
(integrations.throttles), so concurrent increments from any number of workers
must all land, and a count must last as long as its window.
"""

from datetime import datetime
from typing import Any

from django.core.cache.backends import db, redis
from django.db import connections, models, router, transaction
from django.utils import timezone

# INCRBY only a key that exists, in one atomic step. Django's client sends
# EXISTS, then INCRBY: two round trips, between which the key may expire and
# INCRBY bring it back with no timeout at all.
INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return nil
"""


class RedisCacheClient(redis.RedisCacheClient):
    """Builds each connection pool's `redis.Redis` once instead of at every call.

    Django's client makes a new `redis.Redis` for each cache operation, and
    redis-py fills a table of some 170 response callbacks in every one: that
    cost more CPU than the Redis command itself, on every send (the per-bot
    count). A `redis.Redis` may be shared: it takes a connection from its pool
    for each command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_if_exists: Any = None

    def get_client(self, key: str | None = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        # A pool lives as long as this object, so its id names it.
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def incr(self, key: str, delta: int) -> int:
        client = self.get_client(key, write=True)
        if self._incr_if_exists is None:
            self._incr_if_exists = client.register_script(INCR_IF_EXISTS)
        value = self._incr_if_exists(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)


class RedisCache(redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


class DatabaseCache(db.DatabaseCache):
    """Django's database cache, with an incr that counts every increment and keeps the expiry.

    Django's incr reads the value, then writes value + delta in another
    statement: two workers counting at once could both write the same number,
    and a send would go uncounted. Here the row is locked first (FOR UPDATE on
    PostgreSQL; SQLite's transactions here take the write lock at BEGIN). And
    Django's incr writes with the default timeout (300 s), which would let a
    count of an hour's or a day's window lapse after five quiet minutes; here
    the key keeps the expiry it was created with, as Redis's INCR does.
    """

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        quote = connection.ops.quote_name
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote('expires')} FROM {quote(self._table)}"  # noqa: S608 - the table's name, from settings
                f" WHERE {quote('cache_key')} = %s{lock}",
                [self.make_and_validate_key(key, version=version)],
            )
            row = cursor.fetchone()
            # Missing as of the lock: a row that another transaction commits
            # later must not be read and written here unlocked.
            value = self._missing_key if row is None else self.get(key, self._missing_key, version)
            if value is self._missing_key:
                raise ValueError(f"Key '{key}' not found.")
            left = (_as_datetime(row[0], connection) - timezone.now()).total_seconds()
            self.set(key, value + delta, timeout=max(left, 0.001), version=version)
        return value + delta


def _as_datetime(value: Any, connection: Any) -> datetime:
    """The `expires` column as the cache reads it (SQLite returns text)."""
    expression = models.Expression(output_field=models.DateTimeField())
    converters = connection.ops.get_db_converters(expression)
    for convert in converters + expression.get_db_converters(connection):
        value = convert(value, expression, connection)
    return value
