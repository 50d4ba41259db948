"""The offers figures of issue 16 in one command: personalized ranking (one member with 200 live
offers: p50/p99 server time; all members of a 1,000,000-member base in batch) and purchases through
the API with 50 live bonus offers against the same without offers.

Each part is its own script with its own options and database (run them alone to repeat one):
  bench/offers_ranking.py    ranking, one member and the batch
  bench/offers_purchases.py  purchases with and without 50 live offers (gunicorn + wrk, or --in-process N)

Usage: .venv/bin/python bench/offers_bench.py [--ranking "ARGS"] [--purchases "ARGS"]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranking", default="", help='options for offers_ranking.py, e.g. "--reuse"')
    parser.add_argument("--purchases", default="", help='options for offers_purchases.py, e.g. "--in-process 1000"')
    args = parser.parse_args()
    failed = False
    for script, options in (("offers_ranking.py", args.ranking), ("offers_purchases.py", args.purchases)):
        print(f"== {script} {options}".rstrip(), flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *shlex.split(options)], check=False)
        failed = failed or done.returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
