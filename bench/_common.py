"""What every benchmark shares so that none can quietly lie.

- `add_target_options(parser, database=…, redis=…, ports={…})`: the database, Redis and ports
  a run uses are options (`--database-url`, `--redis-url`, `--port`/`--<name>-port`), defaulting
  to BENCH_POSTGRES_URL / BENCH_REDIS_URL or the script's own default, so two people (or two
  scripts) never share one by accident.
- `machine()`: a context manager printing the load average (and `nproc`) before and after the
  measurement, also when it fails: a figure means little without how busy the machine was.
- `require(got, wanted, what)`: exit non-zero when a run measured nothing or fewer samples
  than asked (`SystemExit` with a message); `measured(samples, wanted, what)` does it for a list
  and hands it back.

Usage (bench/ is on sys.path when a script in it runs):

    import _common
    parser = argparse.ArgumentParser()
    _common.add_target_options(parser, database="postgres://postgres@127.0.0.1:5432/helpdesk_x")
    args = parser.parse_args()          # args.database_url
    with _common.machine():
        timings = _common.measured([time_one() for _ in range(args.runs)], args.runs, "sweeps")
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def load_average() -> str:
    """The 1, 5 and 15-minute load averages and the number of CPUs, as one line."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (nproc {os.cpu_count()})"


@contextlib.contextmanager
def machine(label: str = "") -> Iterator[None]:
    """Print the load average before and after the block (after also when it raises)."""
    suffix = f" {label}" if label else ""
    print(f"machine before{suffix}: {load_average()}", flush=True)
    try:
        yield
    finally:
        print(f"machine after{suffix}: {load_average()}", flush=True)


def require(got: int, wanted: int, what: str) -> None:
    """Exit non-zero unless at least `wanted` (and at least one) `what` were measured."""
    if got <= 0 or got < wanted:
        sys.exit(f"FAILED: measured {got} {what}, {wanted} asked")


def measured(samples: Sequence[T], wanted: int, what: str) -> Sequence[T]:
    """`samples`, once `require` has checked there are as many as asked."""
    require(len(samples), wanted, what)
    return samples


def add_target_options(
    parser: argparse.ArgumentParser,
    *,
    database: str | None = None,
    redis: str | None = None,
    ports: dict[str, int] | None = None,
) -> None:
    """Options for what a run writes to: --database-url, --redis-url, and one option per port.

    `ports={"port": 8011}` adds `--port`; `{"hook_port": 8013}` adds `--hook-port`.
    The database and Redis defaults can be moved with BENCH_POSTGRES_URL / BENCH_REDIS_URL.
    """
    if database is not None:
        parser.add_argument(
            "--database-url", default=os.environ.get("BENCH_POSTGRES_URL", database),
            help=f"PostgreSQL database to use (default: $BENCH_POSTGRES_URL or {database})",
        )
    if redis is not None:
        parser.add_argument(
            "--redis-url", default=os.environ.get("BENCH_REDIS_URL", redis),
            help=f"Redis database to use (default: $BENCH_REDIS_URL or {redis})",
        )
    for name, default in (ports or {}).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default, help=f"(default {default})")
