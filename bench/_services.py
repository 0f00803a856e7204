"""What the benchmarks that run the whole system share: a private PostgreSQL cluster, processes
started in their own session and stopped by group, and nearest-rank percentiles.

bench/load.py and bench/soak.py start gunicorn, Celery workers and beat, and (soak) restart
PostgreSQL under load; a cluster of their own keeps that away from everyone else's databases.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_VERSION = "15"


def private_cluster(name: str, port: int, database: str) -> str:
    """A PostgreSQL cluster `name` of our own on `port`, trusting local connections; its URL.

    A cluster a previous run left behind is dropped first.
    """
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    if f" {name} " in listed:
        subprocess.run(["pg_dropcluster", PG_VERSION, name, "--stop"], check=True)
    subprocess.run(["pg_createcluster", PG_VERSION, name, "-p", str(port), "--start"], check=True, capture_output=True)
    hba = Path(f"/etc/postgresql/{PG_VERSION}/{name}/pg_hba.conf")
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n")
    subprocess.run(["pg_ctlcluster", PG_VERSION, name, "reload"], check=True)
    return f"postgres://postgres@127.0.0.1:{port}/{database}"


def drop_cluster(name: str) -> None:
    subprocess.run(["pg_dropcluster", PG_VERSION, name, "--stop"], check=False, capture_output=True)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `args` in ROOT, output appended to `log`, in a session of its own: the process and
    its children (gunicorn's and Celery's workers) are stopped, or killed, by their group id."""
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen | None, name: str = "") -> None:
    """SIGTERM the process's group, then SIGKILL it if it has not stopped in 40 s."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        print(f"{name or process.args[0]} did not stop in 40 s: killing its process group {process.pid}")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def loadavg() -> str:
    """The 1, 5 and 15-minute load averages, as three numbers."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank `p`th percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
