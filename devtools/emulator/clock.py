"""The virtual clock: the only source of "now" inside the emulator."""

from __future__ import annotations

import threading
import time

from .scenarios import ClockKind


class VirtualClock:
    """Virtual Unix time that either follows the wall clock at ``speed`` or moves only when told.

    ``advance`` works on both kinds: on a realtime clock it jumps ahead and keeps running from there.
    The clock never goes backwards, which is what lets the world treat "published" as monotone.
    """

    def __init__(self, *, kind: ClockKind, start: float, speed: float = 1.0) -> None:
        self.kind = kind
        self.start = float(start)
        self.speed = speed
        self._started_at = time.monotonic()
        self._jumped = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            running = (time.monotonic() - self._started_at) * self.speed if self.kind == "realtime" else 0.0
            return self.start + running + self._jumped

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the virtual clock never goes backwards")
        with self._lock:
            self._jumped += seconds
        return self.now()

    def advance_to(self, target: float) -> float:
        return self.advance(max(0.0, target - self.now()))
