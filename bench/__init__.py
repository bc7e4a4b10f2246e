"""`make bench`: the app under gunicorn, driven by a load generator on loopback."""
