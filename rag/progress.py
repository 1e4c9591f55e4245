"""Progress on long runs: a tqdm bar on a terminal, and a plain line now and then otherwise (a log
file or CI shows progress too, without a flood of carriage returns)."""

from __future__ import annotations

import sys
import time

LINE_EVERY_S = 10.0


class Progress:
    """`with Progress("reading", "files") as p: p.update(done, total)` (or `p.advance(n, total)`)."""

    def __init__(self, label: str, unit: str, stream=None) -> None:
        self.label, self.unit = label, unit
        self.stream = stream or sys.stderr
        self.done, self.total = 0, 0
        self.started = self.last_line = time.perf_counter()
        self.bar = None

    def __enter__(self) -> "Progress":
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=self.label, unit=f" {self.unit}", leave=False, file=self.stream)
        return self

    def advance(self, n: int, total: int) -> None:
        self.update(self.done + n, total)

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.done)
        self.done, self.total = done, total
        now = time.perf_counter()
        if self.bar is None and now - self.last_line >= LINE_EVERY_S:
            self.last_line = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        """'reading: 120/506 files (12.3 files/s)'"""
        elapsed = max((now or time.perf_counter()) - self.started, 1e-9)
        return f"{self.label}: {self.done}/{self.total} {self.unit} ({self.done / elapsed:.1f} {self.unit}/s)"

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
