"""A periodic job as beat runs it: each layer lists its own (ingest from its sources, the compute
path in marts.schedules) and `arbitra.schedules` installs them all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int
    queue: str
