"""The one settings module: every environment differs only by environment variables.

See `.env.example` for the variables and their defaults.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from control_tower.celery_queues import task_routes

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` is read when present (never committed); real deployments set variables.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        # A default key in production would let anyone forge sessions, password-reset and
        # invitation links: refuse to start rather than run with a key that is public.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off: set SECRET_KEY to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=1 for "
            "local development."
        )
    SECRET_KEY = "dev-only-insecure-key-change-me"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Websocket Origins accepted besides http(s)://<ALLOWED_HOSTS entry> on the default ports
# (control_tower/tenancy/origins.py): exact scheme://host[:port] values, e.g. a dev server's
# "http://127.0.0.1:8000".
WEBSOCKET_ALLOWED_ORIGINS = env.list("WEBSOCKET_ALLOWED_ORIGINS", default=[])

INSTALLED_APPS = [
    "control_tower.apps.ControlTowerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "leaflet",
    "channels",
    "control_tower",
    "carriers",
    "tracking",
    "exceptions",
    "notifications",
    "webhooks",
    "carriers.feeds.apps.CarrierFeedsConfig",
    "carriers.sla.apps.SlaConfig",
    "portal",
    "driver_app",
    "csp",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every page (docs/SECURITY.md); pages with their own (the
    # tracking page, the driver app) keep theirs.
    "control_tower.web.ContentSecurityPolicyMiddleware",
    # Serves /static/ from the ASGI server itself (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "control_tower.cache_headers.NoStoreForSignedInMiddleware",
    "control_tower.tenancy.middleware.OrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes checks every login (the site's and the admin's both go through Django's
# `authenticate`) before the password backend runs.
AUTHENTICATION_BACKENDS = [
    "control_tower.lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# The site's Content-Security-Policy (django-csp): scripts and styles from this site, or inline
# with the response's nonce; style *attributes* are allowed (Leaflet's markers and the console's
# rotated vehicle icons set them); images also from `data:`, `blob:` and the map tile server
# (added by control_tower.web.ContentSecurityPolicyMiddleware); connections to this site only
# ('self' covers its websockets); no framing, no plugins, forms post here only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        "worker-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

ROOT_URLCONF = "control_tower.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "control_tower.asgi.application"

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
                "control_tower.tenancy.context_processors.organization",
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default="postgis://postgres@127.0.0.1:5432/control_tower"
    ),
}
# GeoDjango needs the PostGIS backend whatever scheme the URL used.
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
# Opening a PostgreSQL connection costs milliseconds, more than a whole ingest request, so
# connections are reused. Under ASGI every request runs its sync code in a thread of its own,
# where persistent connections (CONN_MAX_AGE) would pile up, one per thread, until PostgreSQL
# refuses clients; Django's psycopg pool is the supported way: a few connections per process,
# borrowed per request. DB_POOL_MAX_SIZE bounds each process (web workers, Celery, beat).
if env.bool("DB_POOL", default=True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        # How long a request waits for a connection (all busy, or PostgreSQL away) before it is
        # answered 503 with Retry-After (control_tower/unavailable.py).
        "timeout": env.float("DB_POOL_TIMEOUT_S", default=10),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Retry-After of the 503 answered while PostgreSQL is out of reach (control_tower/unavailable.py).
DATABASE_RETRY_AFTER_S = env.int("DATABASE_RETRY_AFTER_S", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="ct"),
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="ct:asgi"),
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

# Celery: Redis is the broker; tasks are acknowledged late so a worker crash re-delivers.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a request when Redis is away: fail fast, the caller decides.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    # With late acks, a task whose worker died (killed, OOM, power) stays unacknowledged in
    # Redis and is handed out again once this many seconds have passed since it was taken
    # (docs/RELIABILITY.md "Faults"). Longer than any task runs, or a slow task would run twice
    # at once (tasks are written to be run again safely). Countdowns stay well below it.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=900),
    # Each worker looks for such tasks every 10 s (kombu's default looks every 100 s).
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Opt-in: one queue per kind of work (control_tower/celery_queues.py, docs/SCALING.md).
CELERY_QUEUES_PER_KIND = env.bool("CELERY_QUEUES_PER_KIND", default=False)
CELERY_TASK_ROUTES = task_routes(CELERY_TASK_DEFAULT_QUEUE) if CELERY_QUEUES_PER_KIND else None
CELERY_BEAT_SCHEDULE: dict = {
    # Create tomorrow's ping partitions ahead, drop what is past retention (idempotent).
    "ping-partitions": {"task": "tracking.maintain_ping_partitions", "schedule": 3600.0},
    # Recompute ETAs of routes whose vehicle reported since (debounced "on new pings").
    "eta-retrain": {"task": "tracking.eta_retrain", "schedule": 24 * 3600.0},
    "eta-sweep": {"task": "tracking.eta_sweep", "schedule": float(env.int("ETA_SWEEP_S", 15))},
    # The ETA windows follow the arrivals of the last days (adaptive conformal, docs/ETA.md).
    "eta-conformal": {
        "task": "tracking.eta_conformal",
        "schedule": float(env.int("ETA_CONFORMAL_S", 900)),
    },
    # The outbox relay's safety net (it is also enqueued after each commit that wrote events).
    "events-relay": {
        "task": "control_tower.events_relay",
        "schedule": float(env.int("EVENTS_RELAY_INTERVAL_S", 5)),
    },
    "events-prune": {"task": "control_tower.events_prune", "schedule": 3600.0},
    # Time-based exception rules (signal lost, stalled, not started, battery) and escalation.
    "exceptions-sweep": {
        "task": "exceptions.sweep",
        "schedule": float(env.int("EXCEPTIONS_SWEEP_S", 30)),
    },
    # Due notifications (held by quiet hours, retries, feedback requests) and webhook
    # deliveries (retries, per-subscription order); both are also enqueued when rows appear.
    "notifications-dispatch": {"task": "notifications.dispatch_due", "schedule": 5.0},
    "webhooks-dispatch": {"task": "webhooks.dispatch_due", "schedule": 5.0},
    # SLA roll-ups: days marked dirty by events, and yesterday again once its pings are in.
    "sla-rollup-dirty": {
        "task": "sla.rollup_dirty",
        "schedule": float(env.int("SLA_ROLLUP_DIRTY_S", 60)),
    },
    # Hourly; each organization's yesterday is recomputed in its local 03:00 hour.
    "sla-rollup-nightly": {"task": "sla.rollup_yesterday", "schedule": 3600.0},
    # The weekly scorecard e-mails whose weekday and hour have come (idempotent claim).
    "sla-scorecard-emails": {"task": "sla.send_scorecard_emails", "schedule": 15 * 60.0},
}
# A periodic run that waited in the queue past its own interval is dropped when a worker takes
# it (`expires`): the next one is due anyway. Without it, a worker that falls behind finds
# hundreds of identical safety-net runs queued (the soak: 409 relay runs, 226 of each
# dispatcher, docs/RELIABILITY.md).
for _entry in CELERY_BEAT_SCHEDULE.values():
    _entry.setdefault("options", {})["expires"] = _entry["schedule"]
# Task modules outside an app's tasks.py (autodiscovery reads tasks.py only).
CELERY_IMPORTS = ("carriers.sla.digest",)

# The outbox relay's tuning, when the environment sets it (the defaults and what each means are
# in control_tower/events/settings.py): the lease decides how soon the rows of a relay that died
# are taken over (docs/RELIABILITY.md "Faults").
for _name in ("EVENTS_RELAY_LEASE_S", "EVENTS_RELAY_BUDGET_S", "EVENTS_RELAY_BATCH"):
    if _name in env.ENVIRON:
        globals()[_name] = env.float(_name) if _name.endswith("_S") else env.int(_name)

# SLA scorecards (docs/SLA_METRICS.md): a GPS fix counts toward tracking coverage for this
# many seconds; planning history groups stops by grid cells of this size (degrees).
SLA_FRESH_FIX_SECONDS = env.int("SLA_FRESH_FIX_SECONDS", 120)
SLA_GRID_DEGREES = env.float("SLA_GRID_DEGREES", 0.01)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if env.bool("FAST_PASSWORD_HASHER", default=False):  # test runs only: hashing dominates them
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
# The customer tracking page speaks these (docs/TRACKING_PAGE.md); the console stays English.
LANGUAGES = [("es", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, first run) WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Invitations to join an organization (docs/TENANCY.md): the link works this many days. The link
# is e-mailed when e-mail is configured (EMAIL_HOST set, or another EMAIL_BACKEND); it is always
# shown once to the inviter.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="control-tower@localhost")
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login lockout (docs/SECURITY.md): AXES_FAILURE_LIMIT wrong passwords for one user
# name from one client IP lock that pair out for AXES_COOLOFF_MINUTES; during the cool-off
# even the right password is refused (429 page with Retry-After). Attempts are rows in
# PostgreSQL (axes' database handler), so every web process sees the same count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "control_tower.ratelimit.client_ip"  # the same proxy rule as limits
AXES_LOCKOUT_CALLABLE = "control_tower.lockout.lockout_response"

# Failed API keys and device tokens (API, OsmAnd, OwnTracks): this many failures from one
# client IP within the window block credentialed requests from it (429 with Retry-After) until
# the window ends. Successes are not counted.
AUTH_FAILURES_PER_IP = env.int("AUTH_FAILURES_PER_IP", default=30)
AUTH_FAILURE_WINDOW_S = env.int("AUTH_FAILURE_WINDOW_S", default=300)

# HTTPS=true (production behind TLS) switches on secure cookies, HSTS and the redirect; each
# can still be set on its own. SECURE_PROXY_SSL_HEADER only when a proxy terminates TLS and
# sets X-Forwarded-Proto (BEHIND_TLS_PROXY=true): otherwise a client could claim HTTPS.
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
# The header only makes the site eligible: listing it in browsers is a separate submission.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
# /healthz answers plain HTTP for load balancers and container checks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "control_tower.api.authentication.ApiKeyAuthentication",
        "control_tower.api.authentication.OrganizationSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["control_tower.api.permissions.HasRolePermission"],
    "DEFAULT_PAGINATION_CLASS": "control_tower.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "control_tower.api.filters.TenantFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "control_tower.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "control_tower.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Control Tower API",
    "DESCRIPTION": (
        "Multi-tenant last-mile delivery control tower. Authenticate with an organization API "
        "key (`Authorization: Api-Key <key>`) or a browser session. Every object belongs to the "
        "caller's organization; objects of other organizations answer 404."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc assets come from drf-spectacular-sidecar: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CarrierKindEnum": "carriers.models.CarrierKind",
        "VehicleKindEnum": "carriers.models.VehicleKind",
        "DeviceKindEnum": "carriers.models.DeviceKind",
        "HubKindEnum": "tracking.models.HubKind",
        "StopKindEnum": "tracking.models.StopKind",
        "ShipmentStatusEnum": "tracking.models.ShipmentStatus",
        "RouteStatusEnum": "tracking.models.RouteStatus",
        "StopStatusEnum": "tracking.models.StopStatus",
        "LanguageEnum": "control_tower.models.Language",
        "FailureReasonEnum": "tracking.models.FailureReason",
        "RoleEnum": "control_tower.tenancy.roles.Role",
        "ApiKeyScopeEnum": "control_tower.tenancy.roles.Scope",
        "NotificationStatusEnum": "notifications.models.Status",
        "NotificationChannelEnum": "notifications.models.Channel",
        "NotificationTriggerEnum": "notifications.models.Trigger",
        "NotificationAudienceEnum": "notifications.models.Audience",
        "SuppressionReasonEnum": "notifications.models.SuppressionReason",
        "PreferenceStateEnum": "notifications.models.PreferenceState",
        "PreferenceSourceEnum": "notifications.models.PreferenceSource",
        # Named once another "source" choice set (contact preferences) joined the schema.
        "PingSourceEnum": "tracking.models.PingSource",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Error answers documented once for every operation (control_tower/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "control_tower.api.schema.add_error_responses",
    ],
}

# Maps: the tile URL is a setting so depots without internet can point at their own server.
LEAFLET_TILES_URL = env.str(
    "LEAFLET_TILES_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png"
)
LEAFLET_CONFIG = {
    "TILES": [
        (
            "Streets",
            LEAFLET_TILES_URL,
            {"attribution": "&copy; OpenStreetMap contributors (ODbL)", "maxZoom": 19},
        )
    ],
    "DEFAULT_CENTER": (-29.95, -71.30),
    "DEFAULT_ZOOM": 12,
    "RESET_VIEW": False,
}

# The dispatcher console's base map (docs/CONSOLE.md), LEAFLET_TILES_URL unless set apart. Empty:
# no tiles, streets are drawn from the loaded road network instead (they are also drawn
# whenever tiles fail to load).
CONSOLE_TILE_URL = env.str("CONSOLE_TILE_URL", default=LEAFLET_TILES_URL)

# Customer tracking page (docs/TRACKING_PAGE.md). Its map's tiles: CONSOLE_TILE_URL unless set
# apart; empty: no tiles (the driver and the destination markers still show).
TRACKING_TILE_URL = env.str("TRACKING_TILE_URL", default=CONSOLE_TILE_URL)
TRACKING_STALE_S = env.int("TRACKING_STALE_S", default=180)  # older fix: "last seen N min ago"
TRACKING_POLL_S = env.int("TRACKING_POLL_S", default=20)  # the page's fallback when no socket
# An open tracking socket re-reads its view model (and re-checks its link) this often, ±20 %;
# events refresh it at once anyway. Each re-read is ~5 queries on the process's one sync
# thread: at 60 s, 1,000 sockets pushed the ping → page p99 from 0.25 s to 1.9 s (bench).
TRACKING_SOCKET_REFRESH_S = env.float("TRACKING_SOCKET_REFRESH_S", default=300.0)

# Business settings
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=500)
BULK_MAX_ITEMS = env.int("BULK_MAX_ITEMS", default=5000)

# Road network (docs/ROADS.md). Urban speeds per OpenStreetMap road class, km/h.
ROAD_DATA_CACHE = env.str("ROAD_DATA_CACHE", default="~/.cache/control-tower/roads")
ROAD_SPEEDS_KMH = {
    "motorway": 80,
    "trunk": 60,
    "primary": 45,
    "secondary": 40,
    "tertiary": 35,
    "unclassified": 30,
    "residential": 25,
    "living_street": 10,
    "service": 15,
    "road": 25,
    "default": 25,
}

# ETAs (docs/ETA.md)
ETA_POSITION_MAX_AGE_S = 600  # an older fix no longer says where the vehicle is
ETA_MATERIAL_CHANGE_S = env.int("ETA_MATERIAL_CHANGE_S", default=60)  # smaller moves: silent
# A ping recomputes its route's ETAs at once, then at most once per this many seconds.
ETA_DEBOUNCE_S = env.float("ETA_DEBOUNCE_S", default=15.0)
# Up to this much longer, at random per window: spreads a fleet's recomputes over time.
ETA_DEBOUNCE_JITTER_S = env.float("ETA_DEBOUNCE_JITTER_S", default=5.0)

# Dispatcher console, live events (docs/REALTIME.md)
CONSOLE_KEY_PREFIX = env.str(
    "CONSOLE_KEY_PREFIX", default=CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] + ":rt"
)  # Redis keys of sequence numbers and coalescing
CONSOLE_COALESCE_WINDOW_S = env.float("CONSOLE_COALESCE_WINDOW_S", default=1.0)  # per vehicle
CONSOLE_COALESCE_TICK_S = 0.1  # how often a flusher looks for parked positions
# Positions offered on one event loop within this long go out as one message per organization.
CONSOLE_BATCH_TICK_S = env.float("CONSOLE_BATCH_TICK_S", default=0.025)
CONSOLE_MEMBERSHIP_RECHECK_S = env.float("CONSOLE_MEMBERSHIP_RECHECK_S", default=30.0)
CONSOLE_ROUTE_CACHE_S = env.float("CONSOLE_ROUTE_CACHE_S", default=30.0)  # vehicle → route

# Ingestion (docs/INGEST.md)
DEVICE_AUTH_CACHE_S = env.int("DEVICE_AUTH_CACHE_S", default=10)  # see carriers/device_auth.py
PING_BATCH_MAX = env.int("PING_BATCH_MAX", default=1000)  # fixes per native batch request
PING_PARTITIONS_AHEAD_DAYS = env.int("PING_PARTITIONS_AHEAD_DAYS", default=3)
PING_DEFAULT_RETENTION_DAYS = 30  # when no organization exists yet
PING_MAX_ACCURACY_M = env.float("PING_MAX_ACCURACY_M", default=100.0)  # worse is flagged
PING_MAX_SPEED_MPS = env.float("PING_MAX_SPEED_MPS", default=60.0)  # faster implied is flagged
PING_MAX_FUTURE_S = env.int("PING_MAX_FUTURE_S", default=300)  # clock skew tolerated
# Later fix times are refused (400), not stored: below PING_PARTITIONS_AHEAD_DAYS, so no fix
# lands in the default partition where retention would never reach it (tracking/ingest/fixes.py).
PING_MAX_AHEAD_S = env.int("PING_MAX_AHEAD_S", default=24 * 3600)
PING_MAX_ATTRIBUTES_BYTES = 2048  # raw protocol attributes kept per fix, beyond: dropped
GPX_MAX_BYTES = env.int("GPX_MAX_BYTES", default=20 * 1024 * 1024)
GPX_MAX_POINTS = env.int("GPX_MAX_POINTS", default=200_000)
SCAN_BATCH_MAX = env.int("SCAN_BATCH_MAX", default=500)
POD_MAX_IMAGE_BYTES = env.int("POD_MAX_IMAGE_BYTES", default=8 * 1024 * 1024)
POD_MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard
POD_MAX_PHOTOS = 5
POD_URL_TTL_S = env.int("POD_URL_TTL_S", default=300)  # signed file links expire
POD_PIN_MAX_FAILURES = 5  # wrong PINs per shipment before it locks for POD_PIN_LOCK_S
POD_PIN_LOCK_S = 15 * 60

# Customer tracking links (docs/TRACKING_LINKS.md). A link is https://<organization's
# tracking_host>/t/<token>, else PUBLIC_BASE_URL/t/<token>, else the request's own host.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
# Rate limits (control_tower/ratelimit.py), per fixed window: tracking page views per token and
# per client IP, recipient actions per link, the lost-link lookup per IP and per organization.
TRACKING_VIEWS_PER_TOKEN = env.int("TRACKING_VIEWS_PER_TOKEN", default=120)  # per minute
TRACKING_VIEWS_PER_IP = env.int("TRACKING_VIEWS_PER_IP", default=300)  # per minute
TRACKING_ACTIONS_PER_LINK = env.int("TRACKING_ACTIONS_PER_LINK", default=20)  # per hour
TRACKING_LOOKUPS_PER_IP = env.int("TRACKING_LOOKUPS_PER_IP", default=10)  # per hour
TRACKING_LOOKUPS_PER_ORGANIZATION = env.int(
    "TRACKING_LOOKUPS_PER_ORGANIZATION", default=1000
)  # per hour
RATELIMIT_KEY_PREFIX = env.str("RATELIMIT_KEY_PREFIX", default=CACHES["default"]["KEY_PREFIX"])
# How many reverse proxies in front of the app append to X-Forwarded-For (0: trust only
# REMOTE_ADDR). The client IP is the address that many hops from the right.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Notifications (docs/NOTIFICATIONS.md, transports in docs/NOTIFICATION_CHANNELS.md). E-mail
# goes through EMAIL_BACKEND / EMAIL_HOST above; SMS through this backend class: the console
# backend (log + JSON-lines file) by default, notifications.channels.twilio.TwilioSmsBackend
# for Twilio's Messages API.
NOTIFICATIONS_SMS_BACKEND = env.str(
    "NOTIFICATIONS_SMS_BACKEND", default="notifications.channels.console.ConsoleSmsBackend"
)
NOTIFICATIONS_SMS_FILE = env.str("NOTIFICATIONS_SMS_FILE", default="")  # console: also a file
NOTIFICATIONS_SMS_CONSOLE_SECRET = env.str("NOTIFICATIONS_SMS_CONSOLE_SECRET", default="")
NOTIFICATIONS_MESSAGE_ID_DOMAIN = env.str(
    "NOTIFICATIONS_MESSAGE_ID_DOMAIN", default="control-tower.local"
)
# The captured-mail viewer at /n/dev/mail/ (the demo's SMTP sink writes there); off when empty.
NOTIFICATIONS_MAIL_VIEWER_DIR = env.str("NOTIFICATIONS_MAIL_VIEWER_DIR", default="")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="https://api.twilio.com")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env.str("TWILIO_FROM", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_TIMEOUT_S = env.float("TWILIO_TIMEOUT_S", default=10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Debian 12 ships GDAL 3.6. The warning is about GDAL opening files or URLs named inside
# user-supplied spatial references; we only build geometries from numbers with SRID 4326.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
