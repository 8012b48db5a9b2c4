"""Rolling-median residuals scored by a robust (MAD) z-score: a Hampel-style detector.

The rolling median follows level and seasonality but ignores isolated spikes, and the
median absolute deviation of the residuals is not inflated by the spikes themselves, as
a standard deviation would be.

Only points with a full window are scored: at the ends the neighbours lie on one side,
and on a seasonal slope their median is biased enough to raise false alarms. A scheduled
scan over overlapping windows scores the newest points on its next run.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Makes the MAD a consistent estimator of the standard deviation for normal data.
MAD_TO_SIGMA = 1.4826
# Same for the mean absolute deviation, used only when over half the residuals are equal.
MEAN_AD_TO_SIGMA = 1.2533


@dataclass(frozen=True)
class Anomaly:
    index: int
    value: float
    expected: float  # the rolling median at this point
    score: float  # robust z-score of the residual; the sign gives the direction


@dataclass(frozen=True)
class Scores:
    """Expected values and robust z-scores for ``values[start : start + len(scores)]``."""

    start: int
    expected: list[float]
    scores: list[float]


def rolling_median(values: Sequence[float], window: int) -> list[float]:
    """Median of each point's ``window // 2`` neighbours on both sides, without the point.

    Including the point would make the median equal it wherever the series is locally
    monotone (a steep seasonal slope), giving a run of zero residuals that collapses the
    MAD. Entry ``j`` belongs to ``values[j + window // 2]``; the ends have no entry.
    """
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of at least 3, got {window}")
    half = window // 2
    return [
        statistics.median([*values[i - half : i], *values[i + 1 : i + half + 1]])
        for i in range(half, len(values) - half)
    ]


def robust_scale(residuals: Sequence[float]) -> float:
    """A standard deviation estimate that a minority of outliers cannot inflate."""
    center = statistics.median(residuals)
    deviations = [abs(r - center) for r in residuals]
    mad = statistics.median(deviations)
    if mad > 0:
        return MAD_TO_SIGMA * mad
    # A mostly flat series has MAD 0; fall back rather than call every blip infinite.
    return MEAN_AD_TO_SIGMA * statistics.fmean(deviations)


def robust_scores(values: Sequence[float], window: int) -> Scores:
    """Each scorable point's rolling median and robust z-score against it."""
    if len(values) < window:
        raise ValueError(f"need at least window={window} values, got {len(values)}")
    start = window // 2
    expected = rolling_median(values, window)
    residuals = [values[start + j] - e for j, e in enumerate(expected)]
    scale = robust_scale(residuals)
    if scale == 0:  # every residual is identical: nothing stands out
        return Scores(start, expected, [0.0] * len(expected))
    center = statistics.median(residuals)
    return Scores(start, expected, [(r - center) / scale for r in residuals])


def detect(values: Sequence[float], *, window: int = 7, threshold: float = 5.0) -> list[Anomaly]:
    """Points whose robust z-score exceeds ``threshold`` in absolute value."""
    if threshold <= 0:
        raise ValueError("threshold must be positive")
    result = robust_scores(values, window)
    return [
        Anomaly(index=result.start + j, value=values[result.start + j], expected=e, score=s)
        for j, (e, s) in enumerate(zip(result.expected, result.scores, strict=True))
        if abs(s) > threshold
    ]
