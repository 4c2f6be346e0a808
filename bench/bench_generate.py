"""Benchmark: how long generate_school takes for a large school and a full year.

Not a test: prints seconds and counts. Run from the repository root:

    .venv/bin/python bench/bench_generate.py               # 1,500 pupils, full 2025/26 year
    .venv/bin/python bench/bench_generate.py --pupils 300 --as-of 2025-12-01 --repeat 3
"""

from __future__ import annotations

import argparse
import time
from datetime import date

from registerwatch.simulator.generate import generate_school


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=1500)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="default: the day after the school year's last term day",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    as_of = args.as_of or date(args.year + 1, 7, 23)
    best = float("inf")
    for run in range(1, args.repeat + 1):
        started = time.perf_counter()
        school = generate_school(seed=args.seed, pupils=args.pupils, year=args.year, as_of=as_of)
        seconds = time.perf_counter() - started
        best = min(best, seconds)
        print(
            f"run {run}: {seconds:.2f} s  pupils={len(school.pupils)} "
            f"marks={len(school.marks)} registers={len(school.registers)} "
            f"amendments={len(school.amendments)} "
            f"expected_findings={len(school.expected_findings)}"
        )
        del school
    print(f"best of {args.repeat}: {best:.2f} s for {args.pupils} pupils up to {as_of}")


if __name__ == "__main__":
    main()
