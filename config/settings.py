"""Settings for chatbot-auth.

Every setting comes from the environment (or a `.env` file beside manage.py);
each one is listed once here and once in `.env.example`.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Variables already in the environment win over the file; ENV_FILE="" reads none.
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
MISSING_SECRET = (
    "must be set when DEBUG is False: run `make .env` (or `make run`) to write a .env "
    "with fresh secrets, or set it in the environment."
)
if ENV_FILE and Path(ENV_FILE).is_file():
    env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(f"SECRET_KEY {MISSING_SECRET}")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
_public_host = urlsplit(PUBLIC_BASE_URL).hostname or "127.0.0.1"

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", _public_host] if DEBUG else []
)
if _public_host not in ALLOWED_HOSTS and "*" not in ALLOWED_HOSTS:
    # The app calls its own endpoints through PUBLIC_BASE_URL (the demo's API
    # definitions do), so its host must always be accepted.
    ALLOWED_HOSTS.append(_public_host)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.ChatbotAuthAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "integrations",
    "chatflows",
]

MIDDLEWARE = [
    # First: a load balancer's probe is answered before the Host header is checked.
    "integrations.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write at once: WAL lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock at BEGIN (so two
    # transactions never deadlock upgrading a read lock), and the busy timeout
    # makes a writer wait for the lock instead of failing "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
        ),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's, with a health check that polls the socket before it sends a
    # query, and batches kept within the parameter limit of server-side binding.
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters sent apart from the SQL, and each statement prepared on its
        # connection from its fifth run: PostgreSQL then parses and plans it
        # once, not at every request. Poolers that cannot keep prepared
        # statements (PgBouncer in transaction mode before 1.21) need it False.
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=5
        )
    pool_size = env.int("DATABASE_POOL_SIZE", default=8)
    if pool_size > 0:
        # Each process shares up to this many connections between its threads: a
        # node holds at most workers x DATABASE_POOL_SIZE, however many threads
        # serve. A thread takes one at its first query and gives it back at the
        # end of the request, and while it waits on the SMS provider or an API.
        # The pool opens one connection and grows as threads wait for one;
        # connections idle for 10 minutes are closed again. So a management
        # command holds one or two, not the whole pool.
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them open
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            # Past this wait for a connection, the request answers 503.
            "timeout": 10,
        }
    # Exports stream their rows through a cursor held open between transactions,
    # which a pooler in transaction mode loses: False reads each result whole.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not env.bool(
        "DATABASE_SERVER_SIDE_CURSORS", default=True
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # A Redis that stops answering fails a request within these seconds instead of holding it.
    _redis_timeout = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": _redis_timeout,
                "socket_timeout": _redis_timeout,
            },
        }
    }
else:
    # Shared by every worker process, unlike the local-memory cache.
    CACHES = {
        "default": {
            "BACKEND": "config.cache.DatabaseCache",
            "LOCATION": "cache_entries",
        }
    }

# --- Auth, i18n, static -------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Files served at the site's root by WhiteNoise: the favicon browsers ask for.
WHITENOISE_ROOT = BASE_DIR / "config" / "public"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Bodies larger than this are refused before parsing (413, `invalid_request`).
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# --- Security -----------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- REST framework -----------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.auth.BotAPIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["integrations.auth.IsBotOrStaff"],
    "DEFAULT_PARSER_CLASSES": ["integrations.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "integrations.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "chatbot-auth API",
    "DESCRIPTION": "Phone-number verification by one-time SMS code, and chat flows, for bots.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- SMS and one-time codes ---------------------------------------------------

SMS_BACKEND = env.str("SMS_BACKEND", default="console")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
# A hung Twilio is cut off after this long in total (connect at most 3 s, no retries).
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)

OTP_PEPPER = env.str("OTP_PEPPER", default="")
if not OTP_PEPPER:
    if not DEBUG:
        raise ImproperlyConfigured(f"OTP_PEPPER {MISSING_SECRET}")
    OTP_PEPPER = "insecure-development-pepper"
if OTP_PEPPER == SECRET_KEY:
    raise ImproperlyConfigured("OTP_PEPPER must differ from SECRET_KEY.")

FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS {MISSING_SECRET}")

OTP_LENGTH = env.int("OTP_LENGTH", default=6)
if not 6 <= OTP_LENGTH <= 10:
    raise ImproperlyConfigured("OTP_LENGTH must be between 6 and 10.")
OTP_TTL_SECONDS = min(env.int("OTP_TTL_SECONDS", default=300), 600)
OTP_MAX_CHECK_ATTEMPTS = env.int("OTP_MAX_CHECK_ATTEMPTS", default=5)
OTP_RESEND_COOLDOWN_SECONDS = env.int("OTP_RESEND_COOLDOWN_SECONDS", default=30)
OTP_MAX_SENDS_PER_PHONE = env.int("OTP_MAX_SENDS_PER_PHONE", default=5)
if OTP_MAX_SENDS_PER_PHONE < 1:
    raise ImproperlyConfigured("OTP_MAX_SENDS_PER_PHONE must be at least 1.")
OTP_SEND_WINDOW_SECONDS = env.int("OTP_SEND_WINDOW_SECONDS", default=600)
OTP_PHONE_LOCK_FAILURES = env.int("OTP_PHONE_LOCK_FAILURES", default=10)
OTP_PHONE_LOCK_SECONDS = env.int("OTP_PHONE_LOCK_SECONDS", default=900)
OTP_ALLOWED_COUNTRIES = [c.upper() for c in env.list("OTP_ALLOWED_COUNTRIES", default=[])]
SMS_DAILY_CAP = env.int("SMS_DAILY_CAP", default=10000)
# Sends (new verifications and resends) per bot: N/second, N/minute, N/hour or
# N/day; empty for no cap. Counted in the cache, so Redis in production.
BOT_SEND_RATE = env.str("BOT_SEND_RATE", default="60/minute").strip()
if BOT_SEND_RATE and not re.fullmatch(r"[1-9][0-9]*/(second|minute|hour|day)", BOT_SEND_RATE):
    raise ImproperlyConfigured(
        f"BOT_SEND_RATE must look like 60/minute (second, minute, hour or day), "
        f"or be empty; not {BOT_SEND_RATE!r}."
    )
# Failed admin logins to one username within a window of STAFF_LOGIN_LOCK_SECONDS
# before it is refused for the rest of the window (0: no cap).
STAFF_LOGIN_MAX_FAILURES = env.int("STAFF_LOGIN_MAX_FAILURES", default=10)
STAFF_LOGIN_LOCK_SECONDS = env.int("STAFF_LOGIN_LOCK_SECONDS", default=900)
if STAFF_LOGIN_LOCK_SECONDS < 1:
    raise ImproperlyConfigured("STAFF_LOGIN_LOCK_SECONDS must be at least 1.")
# A worker reuses an API key it has validated for this long (0: never). Revoking
# or deleting a key in the admin clears the worker that saved it at once; the
# other workers stop accepting the key within this many seconds.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="") or None

# Empty means the host of PUBLIC_BASE_URL, so the demo can call the app itself.
INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = env.list("INTEGRATIONS_ALLOWED_PRIVATE_HOSTS", default=[]) or [
    _public_host
]
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=90)

# --- Logging ------------------------------------------------------------------

# plain: one readable line per record; json: one JSON object per line, for a log collector.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The twilio client logs request bodies at INFO, and a body holds the code.
        "twilio": {"level": "WARNING"},
        # urllib3 logs each request line at DEBUG, query string (and its secrets) included.
        "urllib3": {"level": "WARNING"},
    },
}
