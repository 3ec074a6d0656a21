"""What the audit log costs an exchange: one transaction per entry vs group commit.

``python -m bench.audit_cost [--entries N] [--postgres URL]``: for SQLite (WAL,
``synchronous=FULL``, a temporary file) and, with ``--postgres``, a PostgreSQL table in a
throw-away schema, ``T`` threads (the provider workers waiting on their entries) write ``N``
entries in all:

* **single**: each entry is its own transaction (``AuditStore.append([one])``), one after the
  other under a lock: what a write without group commit costs;
* **group**: every thread calls ``AuditLog.write`` and waits on its future; the writer thread
  commits what has gathered in one transaction.

Prints entries per second and the latency a caller waits (p50, p99) as a Markdown table.

``--exchanges N``: the demo stack in this process (embedded transport, SQLite audit log), N
exchanges of the cadastre service from 1 and from 8 concurrent clients, once with the audit log
and once with a store that chains but writes nothing: what the entries cost an exchange.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bus.records.audit import AuditLog, AuditRecord, AuditStore, SqliteAuditStore

SECRET = b"bench-only-audit-secret-0123456789"


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        message_id=str(uuid.uuid4()),
        correlation=str(uuid.uuid4()),
        client="portal",
        provider="cadastre",
        service="cadastre/property-ownership/v1",
        user=f"officer-{i % 50}",
        purpose="housing-subsidy",
        subject=f"{i:064x}",
        outcome="ok",
        side="provider",
        requested_at="2026-03-01T10:00:00.000000+00:00",
        response_digest="ab" * 32,
    )


def _run(threads: int, entries: int, write: Callable[[AuditRecord], object]) -> dict[str, float]:
    per_thread = entries // threads
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        mine = []
        for i in range(per_thread):
            started = time.perf_counter()
            write(_record(t * per_thread + i))
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def measure(
    name: str, open_store: Callable[[], AuditStore], entries: int, threads: list[int]
) -> list[str]:
    rows = []
    for t in threads:
        store = open_store()
        lock = threading.Lock()

        def single(record: AuditRecord, store: AuditStore = store, lock: threading.Lock = lock
                   ) -> object:
            with lock:
                return store.append([record])

        one = _run(t, entries, single)
        store.close()
        batches: list[int] = []
        counted = open_store()
        original = counted.append

        def counting(
            records: list[AuditRecord],
            original: Callable[[list[AuditRecord]], object] = original,
            batches: list[int] = batches,
        ) -> object:
            batches.append(len(records))
            return original(records)

        counted.append = counting  # type: ignore[method-assign, assignment]
        audit = AuditLog(counted, secret=SECRET)
        group = _run(t, entries, audit.write)
        audit.close()
        mean_batch = sum(batches) / len(batches)
        rows.append(
            f"| {name} | {t} | {one['rate']:.0f} | {one['p50_ms']:.2f} | {one['p99_ms']:.2f} "
            f"| {group['rate']:.0f} | {group['p50_ms']:.2f} | {group['p99_ms']:.2f} "
            f"| {mean_batch:.1f} |"
        )
        print(rows[-1], flush=True)
    return rows


class _NoWrite:
    """Chains entries like a store, writes nothing (the baseline of ``--exchanges``)."""

    def __init__(self) -> None:
        self.seq, self.head = 0, "0" * 64

    def append(self, records: list[AuditRecord]) -> list[object]:
        from bus.records.audit import chain

        entries = chain(records, after_seq=self.seq, after_hash=self.head, recorded_at="-")
        self.seq, self.head = entries[-1].seq, entries[-1].hash
        return list(entries)

    def entries(self, **kw: object) -> list[object]:
        return []

    def check(self) -> str:
        return "no-write"

    def close(self) -> None:
        pass


def exchanges(n: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from demo.data import PEOPLE
    from demo.scenario import PROPERTY, start_stack

    stack = start_stack()
    try:
        headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "bench",
                   "X-Bus-Purpose": "housing-subsidy"}
        real = stack.node.audit.store
        print("| audit store | clients | exchanges/s | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        for label, store in (("SQLite FULL", real), ("none (chained, not written)", _NoWrite()),
                             ("SQLite FULL", real)):
            stack.node.audit.store = store  # type: ignore[assignment]
            for clients in (1, 8):
                with httpx.Client(base_url=stack.gateway.url, headers=headers,
                                  timeout=30) as client:

                    def one(i: int, client: httpx.Client = client) -> float:
                        started = time.perf_counter()
                        r = client.post(f"/v1/services/{PROPERTY}",
                                        json={"pinfl": PEOPLE[i % 2].pinfl})
                        assert r.status_code == 200, r.text
                        return time.perf_counter() - started

                    for i in range(20):
                        one(i)  # warm up
                    started = time.perf_counter()
                    with ThreadPoolExecutor(clients) as pool:
                        lat = sorted(pool.map(one, range(n)))
                    rate = n / (time.perf_counter() - started)
                print(f"| {label} | {clients} | {rate:.0f} | {statistics.median(lat) * 1000:.1f} "
                      f"| {lat[int(n * 0.99) - 1] * 1000:.1f} |", flush=True)
        stack.node.audit.store = real
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--threads", default="1,8,32")
    parser.add_argument("--postgres", default=None, help="postgresql://… (a schema is made)")
    parser.add_argument(
        "--dir", default=".", help="where the SQLite files go (a real disk: tmpfs has no fsync)"
    )
    parser.add_argument("--exchanges", type=int, default=0, help="measure exchanges instead")
    args = parser.parse_args()
    if args.exchanges:
        exchanges(args.exchanges)
        return
    threads = [int(t) for t in args.threads.split(",")]
    print(
        "| store | threads | single entries/s | single p50 ms | single p99 ms "
        "| group entries/s | group p50 ms | group p99 ms | mean batch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix=".audit-bench-") as tmp:
        n = iter(range(1000))
        measure(
            "SQLite FULL",
            lambda: SqliteAuditStore(Path(tmp) / f"audit-{next(n)}.db"),
            args.entries,
            threads,
        )
    if args.postgres:
        import psycopg

        from bus.records.audit.postgres import PostgresAuditStore

        schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
        m = iter(range(1000))
        try:
            measure(
                "PostgreSQL",
                lambda: PostgresAuditStore(args.postgres, table=f"{schema}.t{next(m)}"),
                args.entries,
                threads,
            )
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as db:
                db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
