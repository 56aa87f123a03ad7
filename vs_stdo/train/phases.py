"""Where a run spends its time and memory: wall time and peak RSS at the end of each phase (decode,
score, train, label, router, write), printed at the end and kept in the bundle's manifest."""
from __future__ import annotations

import resource
import sys
import time


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Phases:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.rows.append({"phase": name, "seconds": round(now - self.last, 2), "peak_rss_mib": round(peak_rss_mib())})
        self.last = now

    def print(self) -> None:
        print("phases: " + ", ".join(f"{r['phase']} {r['seconds']:.1f} s" for r in self.rows)
              + f"; peak RSS {max(r['peak_rss_mib'] for r in self.rows):.0f} MiB", file=sys.stderr)
