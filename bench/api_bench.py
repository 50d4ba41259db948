"""API benchmark: gunicorn on 127.0.0.1 against PostgreSQL, driven by wrk.

Prints purchases/s and p50/p99 latency of POST /api/v1/purchases/ at 8 and 32 concurrent
clients, beside a bare DRF endpoint (same API-key auth) that only locks one row and inserts one
row, measured in the same run, and the ratios. Each run is bounded (--seconds, default 10).

    .venv/bin/python bench/api_bench.py [--seconds 10 --workers 4 --threads 4]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import redis
from _setup import ROOT, setup

LUA = r"""
local counter = 0
local thread_id = 0
local next_id = 0
local members = {%(members)s}
local accounts = {%(accounts)s}
setup = function(thread) next_id = next_id + 1; thread:set("tid", next_id .. "-" .. os.time()) end
init = function(args) thread_id = tid end
request = function()
  counter = counter + 1
  local i = (counter %% #members) + 1
  local ext = thread_id .. "-" .. counter
  local body
  if "%(mode)s" == "purchase" then
    body = '{"member_number":"' .. members[i] .. '","external_id":"' .. ext .. '","occurred_at":"2020-01-01T10:00:00Z",' ..
      '"total":"42.50","store":"S1","lines":[{"sku":"A1","category":"food","quantity":"2","amount":"30.00"},' ..
      '{"sku":"B2","category":"drinks","quantity":"1","amount":"12.50"}]}'
  else
    body = '{"account_id":' .. accounts[i] .. ',"external_id":"' .. ext .. '"}'
  end
  return wrk.format("POST", nil, {["Content-Type"]="application/json", ["Authorization"]="Api-Key %(key)s"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%.1f %%.1f %%.1f %%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean, summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
"""


def wrk(url: str, script: str, clients: int, seconds: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(clients, 2)),
            "-c",
            str(clients),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            script,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out)
    requests, duration_us, p50, p99, _mean, errors = match.groups()
    return {
        "rps": int(requests) / (int(duration_us) / 1e6),
        "p50_ms": float(p50) / 1000,
        "p99_ms": float(p99) / 1000,
        "errors": int(errors),
        "requests": int(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="a Redis database the bench may flush (throttle counters, Celery broker)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    setup("loyalty_bench_api")

    from django.db import connection

    from loyalty.activity.services import enrollment_record
    from loyalty.partners.services import partner_key_create
    from members.models import EnrollmentSource

    partner, _, key = partner_key_create(partner_name="Bench Partner", scopes=["read", "write"])
    members = [
        enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email=f"bench{i}@example.com")
        for i in range(200)
    ]
    accounts = [m.accounts.get().pk for m in members]
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE bench_bare (id bigserial PRIMARY KEY, account_id bigint NOT NULL, external_id text NOT NULL, UNIQUE (account_id, external_id))"
        )
        cur.execute("ANALYZE")  # planner statistics, as a database in service has them
    connection.close()

    # as in production: Redis holds the throttle counters and is the Celery broker
    redis_url = args.redis_url
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "API_THROTTLE_RATE": "1000000/min",
        "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT}",
        "REDIS_URL": redis_url,
    }
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "loyalty.wsgi",
            "-b",
            f"127.0.0.1:{args.port}",
            "-w",
            str(args.workers),
            "--threads",
            str(args.threads),
            "-k",
            "gthread",
            "--log-level",
            "error",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/schema/", timeout=1)  # noqa: S310 - local bench server
                break
            except OSError:
                time.sleep(0.2)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for mode, path in (("bare", "/bench/bare/"), ("purchase", "/api/v1/purchases/")):
                script = Path(tmp) / f"{mode}.lua"
                script.write_text(
                    LUA
                    % {
                        "members": ",".join(f'"{m.member_number}"' for m in members),
                        "accounts": ",".join(map(str, accounts)),
                        "mode": mode,
                        "key": key,
                    }
                )
                wrk(f"http://127.0.0.1:{args.port}{path}", str(script), 4, 2)  # warm-up
                for clients in (8, 32):
                    results[(mode, clients)] = wrk(
                        f"http://127.0.0.1:{args.port}{path}", str(script), clients, args.seconds
                    )
    finally:
        gunicorn.terminate()
        gunicorn.wait(10)
        redis.Redis.from_url(redis_url).flushdb()

    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads, PostgreSQL, Redis, {args.seconds} s per run, wrk"
    )
    for clients in (8, 32):
        bare, purchase = results[("bare", clients)], results[("purchase", clients)]
        for name, r in (("bare lock+insert", bare), ("POST /api/v1/purchases/", purchase)):
            print(
                f"  {clients:>2} clients  {name:<24} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  ({r['requests']} requests, {r['errors']} errors)"
            )
        print(
            f"  {clients:>2} clients  purchases/bare throughput {purchase['rps'] / bare['rps']:.2f} (target >= 0.5), p99 ratio {purchase['p99_ms'] / bare['p99_ms']:.2f} (target <= 2)"
        )


if __name__ == "__main__":
    main()
