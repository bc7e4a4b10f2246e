"""Django's Redis cache, keeping one Redis client per connection pool."""

from typing import Any

from django.core.cache.backends import redis


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

    def get_client(self, key: str | None = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        # A pool lives as long as this object, so its id names it.
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
