"""Settings for every environment, read from environment variables (django-environ).

With nothing set, the project runs embedded: SQLite under ``var/``, an in-process channel
layer, a local-memory cache and Celery tasks that run inline, so a fresh checkout works with no
services. Production sets ``DEBUG=false``, ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL``
and ``REDIS_URL``; see README.md for the full list.
"""

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)


def _secret_key() -> str:
    """The SECRET_KEY: required in production; in development, generated once under var/."""
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()


def _field_key(variable: str, file_name: str, make) -> str:
    """A field-encryption setting (docs/encryption.md): required when DEBUG is false; in
    development generated once under var/, as the SECRET_KEY is."""
    value = env.str(variable, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{variable} must be set when DEBUG is false (see docs/encryption.md).")
    key_file = VAR_DIR / file_name
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(make())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Personal fields encrypted at rest (marketing/field_encryption.py): Fernet keys, comma-separated,
# the first encrypts and all decrypt (rotate_field_keys moves values to the first); and the key
# of the blind indexes (exact-match lookups of encrypted values), which is never rotated.
FIELD_ENCRYPTION_KEYS = [
    k.strip()
    for k in _field_key(
        "FIELD_ENCRYPTION_KEYS",
        "field_encryption_key",
        lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    ).split(",")
    if k.strip()
]
FIELD_INDEX_KEY = _field_key("FIELD_INDEX_KEY", "field_index_key", lambda: secrets.token_urlsafe(32))


def _erasure_hash_keys() -> list[str]:
    """ERASURE_HASH_KEY: the keys of the hashes an erasure leaves (marketing/erased_identities.py),
    comma separated. Never rotated: a hash must still match years later, so a new key is added in
    front (new hashes use it) and lookups try every key. Required in production; in development,
    generated once under var/."""
    keys = [key.strip() for key in env.list("ERASURE_HASH_KEY", default=[]) if key.strip()]
    if keys:
        return keys
    if not DEBUG:
        raise ImproperlyConfigured("ERASURE_HASH_KEY must be set when DEBUG is false.")
    key_file = VAR_DIR / "erasure_hash_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return [key_file.read_text().strip()]


ERASURE_HASH_KEY = _erasure_hash_keys()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",  # runserver serves ASGI (HTTP + websockets)
    "unfold.apps.BasicAppConfig",  # the console's theme, before the admin (its templates win); keeps our site
    "unfold.contrib.filters",  # autocomplete list filters on large foreign keys
    "marketing.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "guardian",
    "axes",  # before marketing: the console wraps its admin pages as superuser-only (marketing/admin.py)
    "pgtrigger",  # the audit log's append-only trigger (marketing/append_only.py)
    "pghistory",  # change history of configuration models (docs/audit.md)
    "marketing.apps.MarketingConfig",
    "workflows",
    "scoring",
    "channels_app",
    "compliance",
    "anymail",  # ESP backends and tracking webhooks (channels_app/esp_tracking.py)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # In production WhiteNoise serves the collected static files; runserver serves them in DEBUG.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    # A NUL in a query parameter is a 400 naming it (PostgreSQL cannot compare one): every route.
    "marketing.query_input.QueryInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "marketing.tenancy.CurrentOrgMiddleware",
    # After the org: who acts (user or API key), for the audit log and pghistory's context.
    "marketing.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "marketing.urls"
WSGI_APPLICATION = "marketing.wsgi.application"
ASGI_APPLICATION = "marketing.asgi.application"

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
                "marketing.tenancy.current_org_context",
            ],
        },
    },
]

# Database -----------------------------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets the console read while a command writes; a busy timeout instead of "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Take the write lock at BEGIN: a deferred transaction that upgrades to writing fails
            # at once with "database is locked" when another writer is active, whatever the timeout.
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A worker that hangs inside a transaction would hold its claimed rows' locks (the engine's
    # lease) for ever; PostgreSQL ends such a session, and the rows are due again.
    idle_timeout_ms = env.int("DB_IDLE_IN_TRANSACTION_TIMEOUT_S", default=120) * 1000
    # And a session whose client died (a SIGKILLed worker) while a statement ran is noticed
    # within 5 s instead of when the statement ends, so its locks go with it.
    # Added to what the URL's own ?options= says (e.g. -c role=…: docs/tenancy.md).
    _session_options = (
        f"-c idle_in_transaction_session_timeout={idle_timeout_ms} -c client_connection_check_interval=5000"
    )
    _given = DATABASES["default"].setdefault("OPTIONS", {}).get("options", "")
    DATABASES["default"]["OPTIONS"]["options"] = f"{_given} {_session_options}".strip()
# The `system` alias: the role that bypasses row-level security, used only by the resolvers that
# run before the org is known or across orgs (marketing/database_roles.py, docs/tenancy.md).
# Unset, it is the default database as the same role (the embedded mode, a single-role setup).
_system_url = env.db(
    "SYSTEM_DATABASE_URL", default=env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
)
DATABASES["system"] = {**DATABASES["default"], **_system_url, "TEST": {"MIRROR": "default"}}
_same_engine = DATABASES["system"]["ENGINE"] == DATABASES["default"]["ENGINE"]
DATABASES["system"]["OPTIONS"] = {
    **(DATABASES["default"].get("OPTIONS", {}) if _same_engine else {}),
    **_system_url.get("OPTIONS", {}),
}
if _same_engine and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    _given = _system_url.get("OPTIONS", {}).get("options", "")
    DATABASES["system"]["OPTIONS"]["options"] = f"{_given} {_session_options}".strip()
DATABASE_ROUTERS = ["marketing.database_roles.SystemAliasRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A decay of a million scores is CPU-bound in PostgreSQL: it runs on this many connections at once,
# each on its share of the contacts (scoring.decay). About the database server's cores.
SCORING_DECAY_WORKERS = env.int("SCORING_DECAY_WORKERS", default=2)

AUTH_USER_MODEL = "marketing.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
    "marketing.roles.RoleBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# The theme's login form carries no "next" field: a plain login lands on the console's home.
LOGIN_REDIRECT_URL = "admin:index"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
# Event batches are up to 5 MB (marketing.events_api); the endpoints answer 413 themselves.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

# The console's theme (django-unfold); the sidebar is built per request from the user's role
# (marketing.console_navigation). Command search stays off: unfold caches its results per user,
# not per organisation, so a member of two orgs would see one org's rows while acting in the other.
UNFOLD = {
    "SITE_TITLE": "Marketing console",
    "SITE_HEADER": "Marketing console",
    "SITE_URL": None,
    "SITE_SYMBOL": "campaign",
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": "marketing.console_navigation.favicon_url"}],
    "SHOW_VIEW_ON_SITE": False,
    "COLORS": {
        "primary": {
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
    "COMMAND": {"search_models": False, "show_history": False},
    "SIDEBAR": {
        "show_search": False,
        "command_search": False,
        "show_all_applications": False,
        "navigation": "marketing.console_navigation.sidebar_navigation",
    },
}

# Redis: cache, channel layer and Celery broker; unset means embedded mode -------------------

REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not REDIS_URL


def _redis_url_for_test_worker(url: str, worker: str) -> str:
    """The tests' Redis database for pytest-xdist worker ``gwN``: N below the one configured.

    Workers each have their own test database, whose ids the others reuse; sharing one Redis
    database would mix their broker queues and live-status groups. The URL is exported again
    with a marker, so the workers and servers a test starts inherit it instead of moving on."""
    parts = urlsplit(url)
    configured = int(parts.path.lstrip("/") or 0)
    database = (configured - int(worker.removeprefix("gw"))) % 16
    os.environ["REDIS_URL_OF_TEST_WORKER"] = worker
    return urlunsplit(parts._replace(path=f"/{database}"))


_test_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL and _test_worker.startswith("gw") and os.environ.get("REDIS_URL_OF_TEST_WORKER") != _test_worker:
    REDIS_URL = os.environ["REDIS_URL"] = _redis_url_for_test_worker(REDIS_URL, _test_worker)

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # A socket's receive blocks in Redis for 5 s (channels-redis' BZPOPMIN); redis-py gives up
    # reading after 5 s by default, so an idle live-status socket died with "Timeout reading".
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: state lives in the database, so the broker only carries "go look" messages. Late
# acks + reject-on-worker-lost mean a killed worker's task is redelivered, never dropped.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Email ------------------------------------------------------------------------------------------

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@localhost")
# Invitations to teammates (marketing/invitations.py): emails an org may send a day, link lifetime.
INVITATIONS_PER_ORG_PER_DAY = env.int("INVITATIONS_PER_ORG_PER_DAY", default=50)
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
# How long the preference-centre link in a marketing message works (compliance/preference_links.py).
PREFERENCE_LINK_MAX_AGE_DAYS = env.int("PREFERENCE_LINK_MAX_AGE_DAYS", default=365)
# Double opt-in (compliance/double_opt_in.py): how long the link confirming form consent works.
CONSENT_CONFIRM_MAX_AGE_DAYS = env.int("CONSENT_CONFIRM_MAX_AGE_DAYS", default=7)
# Data-subject requests (compliance/data_subject_requests.py): the law a request is due under when
# none is named ("gdpr" or "ccpa"), how long its confirmation link works, and its archive's link.
DSAR_DEFAULT_LAW = env.str("DSAR_DEFAULT_LAW", default="gdpr")
DSAR_VERIFY_MAX_AGE_DAYS = env.int("DSAR_VERIFY_MAX_AGE_DAYS", default=7)
DSAR_DOWNLOAD_MAX_AGE_DAYS = env.int("DSAR_DOWNLOAD_MAX_AGE_DAYS", default=7)

# Provider rate limits (messages a second per channel; a token bucket in Redis shared by workers).
EMAIL_RATE_PER_S = env.float("EMAIL_RATE_PER_S", default=50)
SMS_RATE_PER_S = env.float("SMS_RATE_PER_S", default=10)
# A hung SMTP server must not outlast a sender's 60 s lease.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# SMS through Twilio (channels_app/providers/sms.py); unset: SMS messages fail with the reason.
# TWILIO_FROM: the sending number (E.164), an alphanumeric sender ID or a Messaging Service SID (MG…).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env.str("TWILIO_FROM", default="")
TWILIO_API_URL = env.str("TWILIO_API_URL", default="https://api.twilio.com")
# ESP tracking webhooks (/hooks/esp/<esp>/tracking/): the "user:password" of their basic auth.
# Empty: reports without an ESP signature are ignored (channels_app/esp_tracking.py).
ANYMAIL = {"WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")}
# Where social posts go (channels_app/providers/social.py): "console" logs them, "mastodon" posts.
SOCIAL_PROVIDER = env.str("SOCIAL_PROVIDER", default="console")
# Web push (channels_app/providers/push.py): a VAPID key pair from `manage.py vapid_keys` (URL-safe
# base64: the public key's uncompressed point, the private key's 32 bytes) and the sender's contact,
# a "mailto:" or "https:" URL push services may write to. Unset: push sends retry, then fail saying so.
VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="")

# Client addresses (marketing/client_address.py): how many reverse proxies in front of the app
# append to X-Forwarded-For. 0 (the default): none, the socket's peer is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Login throttling (django-axes): failed console logins are counted per username and client address
# together, so a guesser is stopped while the person signs in from elsewhere (and cannot be locked
# out from elsewhere). Each failure while locked starts the cool-off again; a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "marketing.client_address.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"

# Metrics (marketing/metrics.py, docs/metrics.md): GET /metrics wants "Authorization: Bearer <token>".
# Empty (the default): the endpoint answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Outbound HTTP (webhook actions) ----------------------------------------------------------------
# Hosts exempt from the private-address guard of workflows/outbound_http.py, e.g. a loopback
# test server or an internal service you trust: "127.0.0.1,hooks.internal:8443".
OUTBOUND_HTTP_ALLOWED_HOSTS = env.list("OUTBOUND_HTTP_ALLOWED_HOSTS", default=[])
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# REST API ---------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # A key first; else the console's session in its current org, with CSRF on writes.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marketing.api_auth.ApiKeyAuthentication",
        "marketing.api_auth.ConsoleSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["marketing.api_auth.HasServerKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The API speaks JSON (anything else is a 415), parsed with bounded nesting and without NUL,
    # lone surrogates or NaN: a 400 naming the field (marketing.json_input).
    "DEFAULT_PARSER_CLASSES": ["marketing.json_input.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "marketing.api_auth.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "marketing.api_auth.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Marketing automation API",
    "DESCRIPTION": "Contacts, companies, events, segments, workflows, scores and the sales handoff queue. "
    "Authenticate with `Authorization: Bearer mk_<id>_<secret>` (see `create_api_key`).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every channel of a message (templates, their preview); a destination's are three of them.
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "channels_app.models.Channel",
        "SegmentKindEnum": "marketing.models.Segment.Kind",
        "RequestKindEnum": "compliance.models.RequestKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "marketing.api_schema.error_responses",
    ],
}

# guardian: no anonymous user row; object permissions only for real users.
ANONYMOUS_USER_NAME = None

# Security: strict whenever DEBUG is off; every value can be relaxed by its variable. ----------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the admin's JS reads it for its websocket/API calls
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Logging: one line per record, key=value, so log shippers can parse it. ---------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "keyvalue": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyvalue"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # daphne's runserver logs each request itself; one line per request is enough.
        "django.channels.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Embedded, every task runs inline in the web process: a "succeeded" line each is noise.
        "celery.app.trace": {"level": "WARNING" if EMBEDDED else "INFO"},
        "twilio.http_client": {"level": "WARNING"},  # a dozen INFO lines a request, no value
        # django-axes announces itself on every start: one stray line on each command's stderr.
        # Its lockout warnings come from its other modules and still show.
        "axes.apps": {"level": "WARNING"},
    },
}
