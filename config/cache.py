"""The caches: Django's Redis and database caches, each with an incr that loses no count.

Both count each bot's sends and each username's failed staff logins
(integrations.throttles), so concurrent increments from any number of workers
must all land, and a count must last as long as its window.
"""

import base64
import pickle
from typing import Any

from django.core.cache.backends import db, redis
from django.db import connections, router, transaction

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
    Django's incr writes through set(), with the default timeout (300 s), which
    let a count of an hour's or a day's window lapse after five quiet minutes,
    and with a COUNT(*) of the whole table for culling. Here only the value is
    updated: the key keeps its expiry, as Redis's INCR does.
    """

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        quote = connection.ops.quote_name
        table, where = quote(self._table), f"WHERE {quote('cache_key')} = %s"
        cache_key = self.make_and_validate_key(key, version=version)
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            if connection.features.has_select_for_update:
                cursor.execute(f"SELECT 1 FROM {table} {where} FOR UPDATE", [cache_key])  # noqa: S608 - the table's name, from settings
                # Missing as of the lock: a row that another transaction
                # commits later must not be read and written here unlocked.
                if cursor.fetchone() is None:
                    raise ValueError(f"Key '{key}' not found.")
            value = self.get(key, self._missing_key, version=version)
            if value is self._missing_key:  # never set, or expired
                raise ValueError(f"Key '{key}' not found.")
            value += delta
            # Encoded as Django's database cache stores every value.
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            update = f"UPDATE {table} SET {quote('value')} = %s {where}"  # noqa: S608 - as above
            cursor.execute(update, [encoded, cache_key])
        return value
