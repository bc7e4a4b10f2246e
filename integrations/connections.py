"""The database connection of a thread that is about to wait on the network."""

from django.db import connection


def release_database_connection() -> None:
    """Give the thread's pooled connection back before a call to the SMS provider or an API.

    Such a call takes a tenth of a second or more, and the thread needs no
    connection meanwhile: with a pool (DATABASE_POOL_SIZE on PostgreSQL) other
    threads use it, and the thread's next query takes one again. Without a pool,
    or inside a transaction, the connection stays where it is.
    """
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()
