"""Deterministic sensor readings with injected anomalies; the stand-in for a data source.

Randomness is seeded from SHA-256 of the sensor id, never ``hash()``, which is salted
per process. Only ``Random.random()`` is used: it is the one generator method whose
sequence Python promises to keep across versions.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

POINTS = 500


def rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def gaussian(source: random.Random) -> float:
    """A standard normal draw by Box-Muller from two ``random()`` calls."""
    u1, u2 = source.random(), source.random()
    return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)


@dataclass(frozen=True)
class Series:
    values: list[float]
    injected: list[int]  # indices where an anomaly was added: the ground truth
    noise: float


def series(
    sensor_id: str, n: int = POINTS, *, anomalies: int | None = None, spacing: int = 10
) -> Series:
    """An hourly reading: level + daily cycle + Gaussian noise, plus isolated spikes.

    ``anomalies`` defaults to 3-5 chosen by the seed; each spike is 10-15 noise standard
    deviations up or down, at least ``spacing`` points from the ends and from each other.
    """
    source = rng("sensor", sensor_id)
    level = 20 + 80 * source.random()
    noise = level * (0.01 + 0.02 * source.random())
    # A daily cycle a few noise-widths high: enough to defeat a global threshold.
    amplitude = noise * (2 + 4 * source.random())
    phase = 2 * math.pi * source.random()
    count = 3 + int(3 * source.random()) if anomalies is None else anomalies
    values = [
        level + amplitude * math.sin(2 * math.pi * i / 24 + phase) + noise * gaussian(source)
        for i in range(n)
    ]
    injected: list[int] = []
    attempts = 0
    while len(injected) < count:
        attempts += 1
        if attempts > 10_000:
            raise ValueError(f"cannot place {count} anomalies {spacing} apart in {n} points")
        index = spacing + int((n - 2 * spacing) * source.random())
        if all(abs(index - other) >= spacing for other in injected):
            injected.append(index)
    for index in injected:
        sign = 1 if source.random() < 0.5 else -1
        values[index] += sign * noise * (10 + 5 * source.random())
    return Series(values=values, injected=sorted(injected), noise=noise)
