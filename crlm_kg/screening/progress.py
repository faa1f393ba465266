"""A progress bar on standard error for ``crlm-kg screen`` (shown on a terminal, or when asked)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()

    def __call__(self, n: int) -> None:
        self.done += n
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        self.stream.write(f"\rscreening [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} patients ({rate:,.0f}/s)")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
