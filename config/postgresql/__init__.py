"""Django's PostgreSQL backend: a health check without a round trip, batches within the
parameter limit of server-side binding, a pool checked the same way (see base.py)."""
