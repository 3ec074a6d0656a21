"""CPU time per role during a cell, from ``/proc``: where the machine's two cores went.

``CpuMeter({"server": [pid, …], "client": [pid], "broker": [pid]})`` reads each process's user +
system time (all its threads) when a cell starts and when it ends; divided by the exchanges of
the cell it gives CPU milliseconds per exchange per role, and divided by the wall time how many
cores each role kept busy. ``"machine"`` is every process's CPU time (``/proc/stat``), so the
share taken by other work on the machine shows. A role whose processes cannot be read (not
Linux, gone) is left out rather than guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "broker_pid", "cpu_seconds", "machine_busy_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all threads), or None if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes of the machine spent busy (not idle nor waiting for I/O)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def broker_pid() -> int | None:
    """The RabbitMQ server's Erlang VM (``beam.smp`` running ``rabbit``) on this machine."""
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "beam.smp":
                continue
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"rabbit" in cmdline and b"boot" in cmdline and b"start_clean" not in cmdline:
            return int(entry.name)
    return None


@dataclass
class CpuMeter:
    """CPU seconds used per role between ``start`` and ``stop``."""

    roles: dict[str, list[int]]

    def _read(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for role, pids in self.roles.items():
            values = [cpu_seconds(p) for p in pids]
            out[role] = None if not values or None in values else sum(v or 0.0 for v in values)
        return out

    def start(self) -> None:
        self._before = self._read()
        self._machine_before = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """CPU seconds per role, and under ``"machine"`` those of every process."""
        after = self._read()
        machine = machine_busy_seconds()
        used: dict[str, float] = {}
        if machine is not None and self._machine_before is not None:
            used["machine"] = machine - self._machine_before
        for role, value in after.items():
            before = self._before.get(role)
            if value is not None and before is not None:
                used[role] = value - before
        return used
