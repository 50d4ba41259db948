"""Settings, read from the environment (django-environ).

DJANGO_ENV=production turns on production mode: SECRET_KEY and ALLOWED_HOSTS must come
from the environment, DEBUG is off and the security settings pass `check --deploy`.
"""

import datetime
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    missing = [name for name in ("SECRET_KEY", "ALLOWED_HOSTS") if not env.str(name, default="")]
    if missing:
        raise ImproperlyConfigured(f"DJANGO_ENV=production needs {', '.join(missing)} in the environment")
    SECRET_KEY = env.str("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    DEBUG = False
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
    DEBUG = env.bool("DEBUG", default=True)

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework_api_key",
    "import_export",
    "django_celery_beat",
    "axes",
    "csp",
    "loyalty.core",
    "members",
    "loyalty.partners",
    "loyalty.ledger",
    "loyalty.tiers",
    "loyalty.activity",
    "loyalty.imports",
    "loyalty.api",
    "segments",
    "offers",
    "loyalty.portal",
    "loyalty.messaging",
    "loyalty.engagement",
    "loyalty.campaigns",
    "loyalty.dashboards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "loyalty.api.middleware.ApiProblemMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: turns a lockout raised during authentication into the lockout page
    "axes.middleware.AxesMiddleware",
]

# Proxies in front of gunicorn that append to X-Forwarded-For. 0: a client's address is REMOTE_ADDR
# (and a client cannot pick its own by sending the header). Used by the API throttles and the admin
# login lockout.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username + address
    "django.contrib.auth.backends.ModelBackend",
]

# Staff login lockout (django-axes): AXES_FAILURE_LIMIT wrong passwords for one username from one
# address lock that pair (not the username everywhere, so nobody elsewhere can lock staff out) for
# AXES_COOLOFF_MINUTES; attempts during the lockout do not prolong it. Unlock at once with
# `manage.py axes_reset_username <username>` (or axes_reset_ip / axes_reset_ip_username / axes_reset).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "loyalty.core.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "loyalty.core.lockout.client_address"
AXES_SENSITIVE_PARAMETERS = ["password"]
AXES_VERBOSE = False  # no start-up banner on every management command; lockouts are still logged

# Content-Security-Policy on every response (django-csp 4 format). Scripts only from this site's
# static files: no inline script anywhere (tests/core/test_csp.py checks the templates); styles may
# be inline (the admin and Swagger UI set style attributes).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "loyalty.urls"

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

WSGI_APPLICATION = "loyalty.wsgi.application"
ASGI_APPLICATION = "loyalty.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite: wait on the write lock instead of failing at once when two requests write.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
elif env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    # PostgreSQL: parameters bound by the server, and a statement run PREPARE_THRESHOLD times on a
    # connection is prepared there (parsed and planned once). A purchase's dozen small statements
    # cost about a third less server time. Turn off behind a pooler in transaction mode (pgbouncer).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=env.int("DATABASE_PREPARE_THRESHOLD", default=5)
    )

# Persistent connections are checked before reuse at the start of each request, so a backend
# killed between requests (restart, failover, idle timeout) costs a reconnect, not a 500.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Hostile input (loyalty/api): a body over this many bytes is 413 problem+json (1,000 purchase
# lines take about 150 KB); JSON nested deeper than API_JSON_MAX_DEPTH is 400 json_too_deep.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)  # Django's default
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=20)
# occurred_at sent to the API lies within [now - PURCHASE_MAX_AGE_DAYS, now + skew] (and, for a
# purchase, not before its program started).
PURCHASE_MAX_AGE_DAYS = env.int("PURCHASE_MAX_AGE_DAYS", default=90)
PURCHASE_MAX_CLOCK_SKEW_SECONDS = env.int("PURCHASE_MAX_CLOCK_SKEW_SECONDS", default=300)

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis as broker when REDIS_URL is set; otherwise tasks run eagerly in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {
    "ledger-mature-pending": {"task": "ledger.mature_pending_lots", "schedule": 15 * 60},
    "ledger-expire-due": {"task": "ledger.expire_due_lots", "schedule": 60 * 60},
    "partners-webhooks-sweep": {"task": "partners.webhooks_sweep", "schedule": 60},
    "ledger-expiring-notify": {"task": "ledger.expiring_notify", "schedule": crontab(hour=6, minute=0)},
    "tiers-nightly-evaluation": {"task": "tiers.evaluate", "schedule": crontab(hour=2, minute=30)},
    "segments-refresh-dynamic": {"task": "segments.refresh_dynamic_segments", "schedule": 60 * 60},
    "segments-nightly-scores": {"task": "segments.compute_scores", "schedule": crontab(hour=1, minute=30)},
    "messaging-outbox-sweep": {"task": "messaging.outbox_sweep", "schedule": 30},
    "messaging-send-sweep": {"task": "messaging.send_sweep", "schedule": 60},
    "messaging-expiring-reminders": {"task": "messaging.expiring_reminders", "schedule": crontab(hour=7, minute=0)},
    "offers-nightly-ranking": {"task": "offers.rank_offers_for_members", "schedule": crontab(hour=3, minute=15)},
    "campaigns-run-due": {"task": "campaigns.run_due", "schedule": 60},
    # engagement: challenges' nightly recomputation; birthdays and anniversaries hourly (each
    # program's local midnight comes at its own UTC hour; a re-run gives nothing twice)
    "engagement-challenges-recompute": {
        "task": "engagement.challenges_recompute",
        "schedule": crontab(hour=4, minute=0),
    },
    "engagement-celebrations": {"task": "engagement.celebrations", "schedule": crontab(minute=5)},
}

# Nightly set-based jobs walk disjoint windows of accounts / members on this many PostgreSQL
# connections at once (one per core is right; SQLite always uses one).
LEDGER_JOB_WORKERS = env.int("LEDGER_JOB_WORKERS", default=2)
TIERS_EVALUATION_WORKERS = env.int("TIERS_EVALUATION_WORKERS", default=2)
# work_mem of a segment refresh's statements (PostgreSQL): its hash aggregates span all purchases.
SEGMENTS_WORK_MEM = env.str("SEGMENTS_WORK_MEM", default="256MB")

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
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files (reward and offer images) through Django's storage API: a directory here, any
# storage backend in production (STORAGES["default"]); the web server serves MEDIA_URL.
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "media"))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Members sign in on the portal; staff keep the admin's own login at /admin/login/.
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:welcome"

# Email (join confirmation, password reset): EMAIL_URL as django-environ reads it, e.g.
# smtp+tls://user:password@smtp.example.com:587; the console backend (prints mails) by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Loyalty <no-reply@loyalty.local>")
# Consent wording shown on the join and my-data pages; stored with every consent the portal records.
PORTAL_CONSENT_WORDING_VERSION = env.str("PORTAL_CONSENT_WORDING_VERSION", default="portal-2026-11")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["loyalty.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["loyalty.api.auth.HasScope"],
    # atomic counters in Redis (loyalty.api.throttling): per API key, and per client address for
    # requests whose key is unusable (checked during authentication)
    "DEFAULT_THROTTLE_CLASSES": ["loyalty.api.throttling.PerKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "partner": env.str("API_THROTTLE_RATE", default="6000/min"),
        "bad_key": env.str("API_ANON_THROTTLE_RATE", default="60/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["loyalty.api.parsers.DepthLimitedJSONParser"],
    "EXCEPTION_HANDLER": "loyalty.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# Webhook URLs must be https and public; tests may allow http://127.0.0.1 (never in production).
WEBHOOKS_ALLOW_HTTP_LOCALHOST = env.bool("WEBHOOKS_ALLOW_HTTP_LOCALHOST", default=False) and not PRODUCTION

SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty platform partner API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # the introduction (DESCRIPTION) and every operation's summary in words: loyalty/api/schema.py
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loyalty.api.schema.postprocess_summaries",
        "loyalty.api.schema.postprocess_constraints",
    ],
    # request bodies get their own components: required text is minLength 1, read-only fields left out
    "COMPONENT_SPLIT_REQUEST": True,
}

IMPORT_EXPORT_USE_TRANSACTIONS = True
# importing rewrites rows: it needs the change permission of the model; exporting is reading: view
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- Coalition access and webhooks (issue 14) -------------------------------------------------
from cryptography.fernet import Fernet  # noqa: E402 - this block's own import

# A one-time redemption code (members.RedemptionCode) lives this long after the portal shows it.
REDEMPTION_CODE_TTL_SECONDS = env.int("REDEMPTION_CODE_TTL_SECONDS", default=600)
# Fernet key (32 url-safe base64 bytes) that encrypts webhook signing secrets at rest. Required in
# production; make one with
#   python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
# Elsewhere a fixed development key is used (never for real secrets).
if PRODUCTION and not env.str("WEBHOOK_SECRETS_KEY", default=""):
    raise ImproperlyConfigured("DJANGO_ENV=production needs WEBHOOK_SECRETS_KEY in the environment")
WEBHOOK_SECRETS_KEY = env.str("WEBHOOK_SECRETS_KEY", default="ZGV2LW9ubHktd2ViaG9vay1zZWNyZXRzLWtleS0wMDA=")
try:  # several comma-separated keys rotate: the first encrypts, all decrypt
    [Fernet(key.strip()) for key in WEBHOOK_SECRETS_KEY.split(",") if key.strip()] or Fernet("")
except ValueError:
    raise ImproperlyConfigured(
        "WEBHOOK_SECRETS_KEY must be one or more Fernet keys (32 url-safe base64 bytes)"
    ) from None
# httpx logs every webhook request at INFO; the delivery log (WebhookAttempt) already records them.
LOGGING.setdefault("loggers", {})["httpx"] = {"level": "WARNING"}

# Messaging (loyalty.messaging): email through Django's email backend (EMAIL_URL and
# DEFAULT_FROM_EMAIL above); SMS and push through a logging provider unless an HTTP gateway URL
# (and its bearer token) is set.
MESSAGING_BASE_URL = env.str("MESSAGING_BASE_URL", default="http://localhost:8000")  # tracking links
MESSAGING_SMS_URL = env.str("MESSAGING_SMS_URL", default="")
MESSAGING_SMS_TOKEN = env.str("MESSAGING_SMS_TOKEN", default="")
MESSAGING_PUSH_URL = env.str("MESSAGING_PUSH_URL", default="")
MESSAGING_PUSH_TOKEN = env.str("MESSAGING_PUSH_TOKEN", default="")
MESSAGING_BATCH_SIZE = env.int("MESSAGING_BATCH_SIZE", default=500)
# What one sent message costs the program, per channel, in the program's money (campaign ROI, profitability).
MESSAGING_COSTS = env.dict(
    "MESSAGING_COSTS", cast={"value": str}, default={"email": "0.001", "sms": "0.05", "push": "0.0005", "inbox": "0"}
)

# Staff dashboards (loyalty/dashboards): the nightly refresh rewrites this many days of the summary
# tables; DATABASE_REPLICA_URL: dashboards and their CSV exports read from that replica.
DASHBOARDS_REFRESH_DAYS = env.int("DASHBOARDS_REFRESH_DAYS", default=95)
# Ledger rows (points, new accounts, reward redemptions) are stamped when written, never dated back:
# the nightly refresh rewrites only their last few days.
DASHBOARDS_LEDGER_REFRESH_DAYS = env.int("DASHBOARDS_LEDGER_REFRESH_DAYS", default=3)
CELERY_BEAT_SCHEDULE["dashboards-nightly-refresh"] = {
    "task": "dashboards.refresh",
    "schedule": crontab(hour=4, minute=0),
}
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DASHBOARDS_READ_DATABASE = "replica" if "replica" in DATABASES else None
DATABASE_ROUTERS = [*globals().get("DATABASE_ROUTERS", []), "loyalty.dashboards.routers.DashboardsReplicaRouter"]
