"""Full-year replay of The Complete Journey on PostgreSQL. Prints:
- the full import (2,469 households, 155,848 baskets, 1.47M lines) through the earn pipeline
  (demo program: tiers, rules, return window, expiry), time and purchases/s, and the part of it that
  writes the 27 campaigns as offers, segments, coupons, uses and redemptions;
- the floor: a raw COPY of the same lines into a bare table, right before and right after the import
  (the machine may be shared: the mean of the two); and the ratio of the two.
Target: the full year in under 2 minutes on a 2-core machine, within 10x of the raw COPY.

  .venv/bin/python bench/import_bench.py [--households N]
"""

from __future__ import annotations

import argparse
import os
import time

from _setup import setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=None)
    args = parser.parse_args()
    setup("loyalty_bench_import")

    import pandas as pd
    from django.db import connection

    from loyalty.imports.complete_journey import complete_journey_import, dataset_load, package_data_dir
    from loyalty.imports.management.commands.load_demo import demo_program_configure

    program = demo_program_configure()
    t = time.perf_counter()
    dataset = dataset_load(households=args.households)
    load_seconds = time.perf_counter() - t
    baskets = sum(len(h.baskets) for h in dataset.households)

    frame = pd.read_parquet(package_data_dir() / "transactions.parquet")
    if args.households is not None:
        frame = frame[frame["household_id"].isin([h.household_id for h in dataset.households])]
    rows = list(frame.itertuples(index=False, name=None))

    def raw_copy(table: str) -> float:
        """Seconds for a raw COPY of the same lines into a bare table (the floor)."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""CREATE TABLE {table} (household_id bigint, store_id bigint, basket_id bigint,
                   product_id bigint, quantity bigint, sales_value numeric(14,2), retail_disc numeric(14,2),
                   coupon_disc numeric(14,2), coupon_match_disc numeric(14,2), week int,
                   transaction_timestamp timestamp)"""
            )
            t = time.perf_counter()
            with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            connection.commit() if not connection.get_autocommit() else None
            return time.perf_counter() - t

    # the machine is shared: the floor is measured right before and right after the import
    copy_before = raw_copy("bench_raw_line_before")
    report = complete_journey_import(dataset=dataset, program=program, batch_members=200)
    import_seconds = report.seconds
    copy_after = raw_copy("bench_raw_line_after")
    copy_seconds = (copy_before + copy_after) / 2

    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"read parquet + build baskets: {load_seconds:.1f} s")
    print(
        f"import through the earn pipeline: {baskets:,} purchases, {report.lines:,} lines in {import_seconds:.1f} s "
        f"= {baskets / import_seconds:,.0f} purchases/s ({report.workflow_purchases} one by one)"
    )
    c = report.campaigns
    print(
        f"of which campaigns as offers ({c.offers} offers, {c.coupons} coupons, {c.coupon_uses} uses, "
        f"{c.offer_redemptions} redemptions, {c.segment_members} targeted members): {report.campaign_seconds:.1f} s"
    )
    print(
        f"raw COPY of {len(rows):,} lines: {copy_before:.1f} s before, {copy_after:.1f} s after the import, "
        f"mean {copy_seconds:.1f} s = {baskets / copy_seconds:,.0f} purchases/s"
    )
    total = load_seconds + import_seconds
    print(f"read + import (end to end): {total:.1f} s = {baskets / total:,.0f} purchases/s")
    print(
        f"ratio import / COPY: {import_seconds / copy_seconds:.1f}x, end to end / COPY: {total / copy_seconds:.1f}x "
        "(target: <= 10x, full year < 120 s)"
    )


if __name__ == "__main__":
    main()
