"""Settings for the test suite: config.settings with test secrets and the locmem SMS outbox.

Nothing is read from `.env`; DATABASE_URL and REDIS_URL still come from the
environment, so the same suite runs on SQLite and on PostgreSQL + Redis.
"""

import os

TEST_ENVIRONMENT = {
    "ENV_FILE": "",
    "DEBUG": "False",
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdef",
    "OTP_PEPPER": "test-pepper-not-for-production",
    "FIELD_ENCRYPTION_KEYS": "pZ0t1y9yq3g0d4gEoQ8yKxj6Xb3m5s7Q2wV9uR1cT4A=",
    "SMS_BACKEND": "locmem",
    "SECURE_SSL_REDIRECT": "False",
    "SESSION_COOKIE_SECURE": "False",
    "CSRF_COOKIE_SECURE": "False",
    "SECURE_HSTS_SECONDS": "0",
    "ALLOWED_HOSTS": "*",
    "PUBLIC_BASE_URL": "http://testserver",
}
for name, value in TEST_ENVIRONMENT.items():
    os.environ[name] = value

from .settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
