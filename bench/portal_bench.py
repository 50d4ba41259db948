"""Member portal benchmark: server time of every portal page for the demo member (household
cj-1 of the demo data, target under 150 ms each) and the queries each page makes.

    .venv/bin/python bench/portal_bench.py [--requests 30] [--households 300]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/loyalty_portal_bench) names the
database; it is created if missing, migrated, and the demo is loaded once (``load_demo``). Each
page is requested through Django's test client in this process (the whole request: middleware,
session, views, templates; no network), once to warm up, then ``--requests`` times; the figures
are the median and the 95th percentile of those.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loyalty_portal_bench"
PAGES = [
    "/home/",
    "/card/",
    "/history/",
    "/history/?kind=earn",
    "/history/?page=3",
    "/my-data/",
    "/my-data/consents/",
    "/my-data/export.json",
    "/my-data/export.zip",
]
TARGET_MS = 150


def prepare_database(url: str) -> None:
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    server = {"host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432, "user": config["USER"]}
    if config.get("PASSWORD"):
        server["password"] = config["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--households", type=int, default=300)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    prepare_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from loyalty.imports.management.commands.load_demo import MEMBER_HOUSEHOLD
    from loyalty.ledger.models import Entry
    from members.models import Member

    settings.LOGGING = {"version": 1}
    call_command("migrate", verbosity=0)
    member = Member.objects.filter(external_id=MEMBER_HOUSEHOLD, user__isnull=False).select_related("user").first()
    if member is None:
        print(f"loading the demo ({args.households} households) once ...", flush=True)
        call_command("load_demo", households=args.households, verbosity=0)
        member = Member.objects.select_related("user").get(external_id=MEMBER_HOUSEHOLD)
    entries = Entry.objects.filter(account__member=member).count()
    print(f"demo member {member.member_number} (household {MEMBER_HOUSEHOLD}): {entries} ledger entries")

    client = Client()
    client.force_login(member.user)
    print(f"{'page':<28}{'median ms':>10}{'p95 ms':>9}{'queries':>9}  target < {TARGET_MS} ms")
    worst = 0.0
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        timings = []
        for _ in range(args.requests):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                client.get(page)
                timings.append((time.perf_counter() - start) * 1000)
        timings.sort()
        median = statistics.median(timings)
        p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
        worst = max(worst, p95)
        print(f"{page:<28}{median:>10.1f}{p95:>9.1f}{len(queries.captured_queries):>9}")
    print(f"slowest p95: {worst:.1f} ms ({'within' if worst < TARGET_MS else 'OVER'} the {TARGET_MS} ms target)")


if __name__ == "__main__":
    main()
