"""Log throttling: a message repeated many times is written a few times, then counted.

At the file-descriptor limit, the event loop logs "socket.accept() out of system resource"
for every accept it retries; an attack once wrote 650 000 such lines (269 MB) in 45 s, and a
full disk is the next outage. ``RepeatThrottle`` lets ``repeats`` identical messages (same
logger, level and text) through per ``window`` seconds, drops the rest, and writes how many
it dropped on the first such message after the window. Different messages are never held back.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

#: the loggers whose own records are throttled (a logger's filters see only the records it
#: creates, not those its children propagate): the event loop, uvicorn, the service
THROTTLED_LOGGERS = ("asyncio", "uvicorn", "uvicorn.error", "uvicorn.access", "crlm_kg", "crlm_kg.api")
#: loggers whose formatter unpacks the record's arguments: a note cannot be added to their records
STRUCTURED_LOGGERS = frozenset({"uvicorn.access"})
NOTES_LOGGER = "uvicorn.error"
MAX_KEYS = 4096  # distinct messages remembered; past it, the expired ones are forgotten


class RepeatThrottle(logging.Filter):
    def __init__(self, repeats: int, window: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.repeats = repeats
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple, list] = {}  # key -> [window start, written, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not this filter's to judge
            return True
        key = (record.name, record.levelno, text[:500])
        now = self._clock()
        note = None
        with self._lock:
            state = self._seen.get(key)
            if state is None or now - state[0] >= self.window:
                dropped = state[2] if state is not None else 0
                if len(self._seen) >= MAX_KEYS:
                    self._forget(now)
                self._seen[key] = [now, 1, 0]
                if dropped:
                    note = f"[{dropped} identical message{'s' if dropped != 1 else ''} dropped in the last {self.window:g} s]"
            else:
                state[1] += 1
                if state[1] > self.repeats:
                    state[2] += 1
                    return False
                if state[1] == self.repeats:
                    note = f"[repeated {self.repeats} times: further identical messages are counted, not written, for {self.window:g} s]"
        if note is not None:  # outside the lock: a separate note is itself logged through this filter
            self._annotate(record, text, note)
        return True

    @staticmethod
    def _annotate(record: logging.LogRecord, text: str, note: str) -> None:
        """Add ``note`` to the record, or, where the logger's formatter reads the record's arguments
        (uvicorn's access log unpacks them into client, method, path…), write it as a line of its own
        on uvicorn's error log and leave the record as it is."""
        if record.name in STRUCTURED_LOGGERS:
            logging.getLogger(NOTES_LOGGER).log(record.levelno, "%s %s", record.name, f"{text} {note}")
        else:
            record.msg, record.args = f"{text} {note}", ()

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self._seen.items() if now - v[0] >= self.window]:
            del self._seen[key]
        if len(self._seen) >= MAX_KEYS:
            self._seen.clear()


def install(repeats: int, window: float) -> RepeatThrottle:
    """Put one throttle on each of ``THROTTLED_LOGGERS`` (replacing an earlier one)."""
    throttle = RepeatThrottle(repeats, window)
    for name in THROTTLED_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RepeatThrottle)]:
            logger.removeFilter(old)
        logger.addFilter(throttle)
    return throttle
