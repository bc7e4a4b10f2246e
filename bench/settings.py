"""Settings for `make bench`: the project's settings plus the bench-only endpoints.

Everything else (database, cache, SMS backend, limits) comes from the
environment that `bench.run` builds, exactly as in production.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"
