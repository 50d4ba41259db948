"""API benchmark: gunicorn on 127.0.0.1 against PostgreSQL, driven by wrk.

Prints purchases/s and p50/p99 latency of POST /api/v1/purchases/ at 8 and 32 concurrent
clients, beside a bare DRF endpoint (same API-key auth) that only locks one row and inserts one
row, measured in the same run, and the ratios. Runs of the two endpoints alternate (--rounds,
default 3; each run bounded by --seconds, default 10) and the medians are reported.

    .venv/bin/python bench/api_bench.py [--seconds 10 --rounds 3 --workers 4 --threads 4]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from _setup import bench_server, setup

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
    body = '{"member_number":"' .. members[i] .. '","external_id":"' .. ext .. '","occurred_at":"' .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ") .. '",' ..
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
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/purchase runs per client count")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database", default="loyalty_bench_api", help="PostgreSQL database (recreated)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="a Redis database the bench may flush (throttle counters, Celery broker)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):  # Debian's package, installed as CI installs Chromium
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    setup(args.database)

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
    with bench_server(port=args.port, workers=args.workers, threads=args.threads, redis_url=args.redis_url):
        runs: dict[tuple[str, int], list[dict]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            urls = {}
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
                urls[mode] = (f"http://127.0.0.1:{args.port}{path}", str(script))
                wrk(*urls[mode], 4, 2)  # warm-up
            # bare and purchase runs alternate, so that a slower minute of the machine falls on
            # both; the figures are the medians of the rounds
            for clients in (8, 32):
                for _ in range(args.rounds):
                    for mode in ("bare", "purchase"):
                        runs.setdefault((mode, clients), []).append(wrk(*urls[mode], clients, args.seconds))

    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads, PostgreSQL, Redis, wrk; "
        f"{args.rounds} alternating rounds of {args.seconds} s per endpoint, medians"
    )
    for clients in (8, 32):
        bare, purchase = runs[("bare", clients)], runs[("purchase", clients)]
        for name, rs in (("bare lock+insert", bare), ("POST /api/v1/purchases/", purchase)):
            print(
                f"  {clients:>2} clients  {name:<24} {_median(rs, 'rps'):8.1f} req/s  p50 {_median(rs, 'p50_ms'):7.1f} ms"
                f"  p99 {_median(rs, 'p99_ms'):7.1f} ms  ({sum(r['requests'] for r in rs)} requests,"
                f" {sum(r['errors'] for r in rs)} errors)"
            )
        throughput = [p["rps"] / b["rps"] for b, p in zip(bare, purchase, strict=True)]
        p99 = [p["p99_ms"] / b["p99_ms"] for b, p in zip(bare, purchase, strict=True)]
        print(
            f"  {clients:>2} clients  purchases/bare throughput {statistics.median(throughput):.2f} (target >= 0.5),"
            f" p99 ratio {statistics.median(p99):.2f} (target <= 2); rounds: "
            + ", ".join(f"{t:.2f}/{q:.2f}" for t, q in zip(throughput, p99, strict=True))
        )


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


if __name__ == "__main__":
    main()
