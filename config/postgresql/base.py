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
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
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


def _has_input(fd: int) -> bool:
    # poll, not select: select() refuses descriptors above 1023, which a worker
    # with many threads and kept-alive clients reaches.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
