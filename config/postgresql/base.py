"""Django's PostgreSQL backend, with a request's health check made without a query.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of
every request that reuses a connection, so that one closed by the server
(a restart, a failover, `pg_terminate_backend`, an idle timeout) is replaced
instead of failing that request. Each such round trip costs a request the
time of a query: under load, as long as one of its real statements.

A server that closes a connection first sends its error message and then
the end of the stream, so the idle socket has something to read. Polling the
socket answers the same question without the round trip. Only when there is
input waiting is the `SELECT 1` sent, and it then decides as before: an idle
connection of ours expects nothing from the server.

With server-side binding (DATABASE_PREPARED_STATEMENTS), each parameter
travels apart from the SQL, and PostgreSQL's protocol takes at most 65,535 of
them in one statement. Django splits its batches (bulk_create, bulk_update,
the deletion collector's related lookups, in_bulk) by that limit only when the
backend declares it, as SQLite's does; this one declares it whenever the
binding is on. Without it, deleting a flow with 70,000 conversations failed.

With a pool (DATABASE_POOL_SIZE), Django checks each connection the pool hands
out with a query when CONN_HEALTH_CHECKS is on: a round trip at every request.
The pool here checks it as the method above does, polling the socket first.
"""

import select
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base, features, operations
from django.utils.functional import cached_property
from psycopg_pool import ConnectionPool

# Parameters in one statement: the protocol counts them in 16 bits.
MAX_QUERY_PARAMS = 65535


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int | None:  # type: ignore[override]
        if self.connection.settings_dict["OPTIONS"].get("server_side_binding"):
            return MAX_QUERY_PARAMS
        return None


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields: list, objs: list) -> int:
        limit = self.connection.features.max_query_params
        if limit and fields:
            return limit // len(fields)
        return super().bulk_batch_size(fields, objs)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.connection.closed
            and not _has_input(self.connection.fileno())
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    @property
    def pool(self) -> ConnectionPool | None:
        """Django's own property, with `_check_pooled` as the pool's check."""
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            pool = ConnectionPool(
                kwargs={**self.get_connection_params(), "autocommit": True},
                open=False,  # opened by the first connection, in the worker process
                configure=self._configure_connection,
                check=_check_pooled if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **({} if options is True else options),
            )
            # Threads starting at once may each build one: the first one kept wins.
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]


def _check_pooled(conn: Any) -> None:
    """Raise for a pooled connection the server has closed (the pool then opens another)."""
    if conn.closed or _has_input(conn.fileno()):
        ConnectionPool.check_connection(conn)


def _has_input(fd: int) -> bool:
    # poll, not select: select() refuses descriptors above 1023, which a worker
    # with many threads and kept-alive clients reaches.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
