from loyalty.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
DEBUG = False
CONN_MAX_AGE = 600
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"level": "ERROR"}}
