"""The web app under load: concurrent signed-in users browsing a 20-school store over loopback.

    .venv/bin/python bench/bench_web.py                        # 20 schools, 50 users, 60 s
    .venv/bin/python bench/bench_web.py --users 50 --seconds 60 --think 1.0
    .venv/bin/python bench/bench_web.py --store /tmp/web-bench/store.db   # reuse a built store
    .venv/bin/python bench/bench_web.py --workers 1          # one server process

It builds (or reuses) a SQLite store of ``--schools`` generated schools (``--pupils`` each, a
term of registers to 1 December 2025), stored as a sync would leave them and scanned by every
rule, with two outbox items per school; adds ``--users`` accounts (four in five a data manager
of one school, one in five an admin of every school); starts ``registerwatch serve``'s app
under uvicorn in a child process on 127.0.0.1, with ``--workers`` worker processes (by
default as many as ``registerwatch serve`` starts: one per CPU, at most four); signs every
user in; then each user, in its own thread with its own connection (httpx), browses for
``--seconds``: the schools page, one
of its schools' findings (filtered at random), a finding, a pupil's register, the returns and
the runs, pausing ``--think`` seconds (uniformly 0.5x-1.5x) between pages as a person does
(``--think 0``: back-to-back requests, a stress test). It reports the p50 / p95 / p99 page
time per page and overall, requests per second, errors (any status other than 200, or a
failed request) and the CPU the server's processes used per page, with the machine's CPU
count. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from registerwatch.cli.web import default_workers

AS_OF = date(2025, 12, 1)
PASSWORD = "bench passphrase for every user"
SECRET = b"bench-web-session-key-0123456789abcdef"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
FINDING = re.compile(r"/findings/([0-9a-f]{16,})\"")
PUPIL = re.compile(r"/pupils/([^\"]+)\"")


def build_store(path: Path, schools: int, pupils: int, users: int) -> None:
    """Generated schools written as sync would (no HTTP), scanned, with outbox items and users."""
    from argon2 import PasswordHasher

    from registerwatch.simulator.generate import generate_school
    from registerwatch.store import Store
    from registerwatch.validators import ScanContext, run_rules
    from registerwatch.web.accounts import create_user

    url = f"sqlite:///{path}"
    at = datetime(2025, 11, 30, 20, 0, tzinfo=UTC)
    ids = [f"school{i:02d}" for i in range(1, schools + 1)]
    with Store.open(url) as store:
        for seed, school_id in enumerate(ids, start=1):
            started = time.perf_counter()
            school = generate_school(seed, pupils, school_id=school_id, as_of=AS_OF)
            store.upsert_school(school.school, at=at)
            store.upsert_calendar(school.calendar, at=at)
            store.upsert_pupils(school.pupils, at=at)
            store.upsert_registers(school.registers, at=at)
            store.upsert_marks(school.marks, school_id, at=at)
            store.add_notifications(school.notifications, at=at)
            ctx = ScanContext.build(
                calendar=school.calendar,
                as_of=AS_OF,
                school_id=school_id,
                pupils=school.pupils,
                registers=school.registers,
                marks=school.marks,
                amendments=school.amendments,
                notifications=school.notifications,
                exposes_registers=True,
                exposes_amendments=True,
            )
            run = store.start_run("scan", at=at)
            findings = run_rules(ctx)
            store.save_findings(findings, at=at)
            store.finish_run(run, "ok", {"findings": len(findings)}, at=at)
            store.record_sync_success(school_id, AS_OF - timedelta(days=1), at=at)
            for n in range(2):
                item, _ = store.enqueue_outbox(
                    return_kind="la-sickness",
                    school_id=school_id,
                    idempotency_key=f"bench-{school_id}-{n}",
                    payload=f'<?xml version="1.0"?><Return n="{n}"/>'.encode(),
                    pupil_id=school.pupils[n].id,
                    at=at,
                )
                if n:
                    store.update_outbox(
                        item.id, state="sent", receipt=f"LA-{school_id}-{n}", attempted=True, at=at
                    )
            print(
                f"  {school_id}: {len(school.pupils)} pupils, {len(school.marks)} marks, "
                f"{len(findings)} findings ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
        # Argon2 at argon2-cffi's defaults, as production; hashing is outside the timed part.
        hasher = PasswordHasher()
        for n in range(users):
            admin = n % 5 == 4
            create_user(
                store,
                f"user{n:03d}@bench.example",
                PASSWORD,
                "admin" if admin else "data-manager",
                schools=() if admin else (ids[n % len(ids)],),
                all_schools=admin,
                actor="bench",
                hasher=hasher,
            )


# The app's clock in the bench: the morning after the store's last scan, so "overdue" means
# something.
BENCH_NOW = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)
STORE_ENV = "BENCH_WEB_STORE"


def bench_app() -> Any:
    """One worker's app (a uvicorn factory, as `registerwatch serve --workers N` builds one in
    each worker), over the store in $BENCH_WEB_STORE, with the bench's clock and key."""
    from registerwatch.config.web import WebSettings
    from registerwatch.logging import configure_logging
    from registerwatch.store import Store
    from registerwatch.web.app import create_app

    configure_logging(level="WARNING")
    store = Store(os.environ[STORE_ENV])
    return create_app(store, WebSettings(), secret=SECRET, clock=lambda: BENCH_NOW)


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """The app under uvicorn in a process of its own, as `registerwatch serve --workers N`
    runs it: each worker imports bench_app by name."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench_web:bench_app",
        "--factory",
        "--app-dir",
        str(Path(__file__).parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, env={**os.environ, STORE_ENV: url}, stdin=subprocess.DEVNULL)


@dataclass
class Results:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, page: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.times[page].append(seconds)
            if error:
                self.errors.append(f"{page}: {error}")


def sign_in(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    token = TOKEN.search(client.get("/login").text)
    assert token, "no CSRF token on /login"
    done = client.post(
        "/login", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD}
    )
    if done.status_code != 303:
        raise RuntimeError(f"{email} could not sign in: {done.status_code}")
    return client


def browse(
    client: httpx.Client,
    schools: list[str],
    until: float,
    think: float,
    results: Results,
    seed: int,
) -> None:
    rng = random.Random(seed)
    findings: list[str] = []
    pupils: list[str] = []

    def page(kind: str, path: str) -> str:
        started = time.perf_counter()
        error = None
        text = ""
        try:
            response = client.get(path)
            text = response.text
            if response.status_code != 200:
                error = f"status {response.status_code} for {kind}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        results.record(kind, time.perf_counter() - started, error)
        return text

    while time.monotonic() < until:
        roll = rng.random()
        if roll < 0.2:
            page("schools", "/")
        elif roll < 0.45:
            school = rng.choice(schools)
            query = rng.choice(
                [
                    "",
                    "?status=all",
                    "?severity=error",
                    "?status=acknowledged",
                    "?severity=warning&status=",
                ]
            )
            text = page("findings", f"/schools/{school}/findings{query}")
            findings = FINDING.findall(text)[:50] or findings
            pupils = PUPIL.findall(text)[:50] or pupils
        elif roll < 0.65 and findings:
            page("finding", f"/findings/{rng.choice(findings)}")
        elif roll < 0.85 and pupils:
            page("pupil", f"/pupils/{rng.choice(pupils)}")
        elif roll < 0.95:
            page("returns", "/returns")
        else:
            page("runs", "/runs")
        if think:
            time.sleep(think * rng.uniform(0.5, 1.5))


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process and its live descendants (uvicorn's workers) have
    used (Linux /proc), or None elsewhere."""
    if pid is None:
        return None
    used: dict[int, float] = {}
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
        child = int(stat.parent.name)
        parent[child] = int(fields[1])
        used[child] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if pid not in used:
        return None

    def in_tree(candidate: int) -> bool:
        while candidate > 1:
            if candidate == pid:
                return True
            candidate = parent.get(candidate, 0)
        return False

    return sum(seconds for process, seconds in used.items() if in_tree(process))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def browse_for(
    args: argparse.Namespace, url: str, base: str, server_pid: int | None
) -> tuple[Results, int, float, float | None] | None:
    """Sign every user in and let them browse; (results, users, seconds, server CPU seconds),
    or None if the server did not start."""
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/login", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)

    from registerwatch.store import Store

    with Store(url, read_only=True) as store:
        accounts = [
            (u.email, [s.id for s in store.schools() if u.may_see(s.id)])
            for u in store.users()
            if u.email.endswith("@bench.example")
        ]
    accounts = accounts[: args.users]
    print(f"signing in {len(accounts)} users ...", flush=True)
    clients = [sign_in(base, email) for email, _ in accounts]

    results = Results()
    until = time.monotonic() + args.seconds
    threads = [
        threading.Thread(
            target=browse, args=(client, schools, until, args.think, results, n), daemon=True
        )
        for n, (client, (_email, schools)) in enumerate(zip(clients, accounts, strict=True))
    ]
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(server_pid)
    used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return results, len(accounts), elapsed, used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--pupils", type=int, default=150)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between pages (s)")
    parser.add_argument("--store", type=Path, help="a store built by an earlier run (kept)")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="uvicorn worker processes (default: `registerwatch serve`'s, one per CPU up to 4)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    path = args.store or folder / "store.db"
    if not path.exists():
        print(f"building {args.schools} schools x {args.pupils} pupils into {path} ...", flush=True)
        started = time.perf_counter()
        build_store(path, args.schools, args.pupils, args.users)
        print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    url = f"sqlite:///{path}"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_server(url, port, args.workers)
    try:
        run = browse_for(args, url, f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        server.wait(30)
    if run is None:
        print("the server did not start", file=sys.stderr)
        return 1
    results, users, elapsed, used = run
    every = [t for values in results.times.values() for t in values]
    print()
    print(
        f"machine: {os.cpu_count()} CPUs ({sys.platform}), Python {sys.version.split()[0]}; "
        "client threads and the server share it"
    )
    print(
        f"{users} users, {args.schools} schools, think {args.think} s, "
        f"{args.workers} server worker(s), {elapsed:.0f} s: "
        f"{len(every)} pages, {len(every) / elapsed:.1f} pages/s, {len(results.errors)} errors"
    )
    if used is not None and every:
        # The server's own CPU per page (every worker's): what the machine's load does not
        # change.
        print(
            f"server CPU: {used:.1f} s over the run, {used / len(every) * 1000:.1f} ms per page; "
            f"load average now {os.getloadavg()[0]:.1f}"
        )
    print(f"{'page':10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in sorted(results.times.items()) + [("ALL", every)]:
        print(
            f"{kind:10} {len(values):6d} {statistics.median(values) * 1000:8.0f} "
            f"{percentile(values, 95) * 1000:8.0f} {percentile(values, 99) * 1000:8.0f} {max(values) * 1000:8.0f}"
        )
    for error in results.errors[:10]:
        print("  error:", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
