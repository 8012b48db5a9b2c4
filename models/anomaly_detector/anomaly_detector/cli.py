"""Command line: flag anomalous readings for each sensor partition."""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import datetime, timedelta

import model_contract as contract

from . import synthetic
from .detection import detect

MODEL = "anomaly_detector"
DEFAULT_WINDOW = 7
DEFAULT_THRESHOLD = 5.0
MAX_WINDOW = 99
WINDOW_ENV = "ANOMALY_WINDOW"
THRESHOLD_ENV = "ANOMALY_THRESHOLD"
HOUR = timedelta(hours=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=MODEL,
        description="Detect anomalies per sensor with a rolling median and robust z-scores.",
    )
    contract.add_contract_arguments(parser)
    parser.add_argument(
        "--window",
        type=int,
        help=f"rolling median window, odd, 3-{MAX_WINDOW} (default: ${WINDOW_ENV} or "
        f"{DEFAULT_WINDOW})",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help=f"robust z-score above which a point is anomalous "
        f"(default: ${THRESHOLD_ENV} or {DEFAULT_THRESHOLD})",
    )
    return parser


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def scan_sensor(
    sensor_id: str, end: datetime, window: int, threshold: float
) -> tuple[contract.Record, str]:
    """Score the ``synthetic.POINTS`` hourly readings that end just before ``end``."""
    data = synthetic.series(sensor_id)
    n = len(data.values)
    start = end - n * HOUR
    found = detect(data.values, window=window, threshold=threshold)
    hits = len({a.index for a in found} & set(data.injected))
    precision = _ratio(hits, len(found))
    recall = _ratio(hits, len(data.injected))
    record: contract.Record = {
        "sensor_id": sensor_id,
        "start": contract.isoformat(start),
        "end": contract.isoformat(end),
        "points": n,
        # Points without a full window either side are not scored (see detection.py).
        "scored_indices": [window // 2, n - 1 - window // 2],
        "window": window,
        "threshold": threshold,
        "anomalies": [
            {
                "index": a.index,
                "timestamp": contract.isoformat(start + a.index * HOUR),
                "value": round(a.value, 4),
                "expected": round(a.expected, 4),
                "score": round(a.score, 3),
            }
            for a in found
        ],
        # The synthetic source knows where it injected spikes, so each run scores itself.
        "injected_indices": data.injected,
        "precision": precision,
        "recall": recall,
    }
    detail = (
        f"points={n} anomalies={len(found)} injected={len(data.injected)} "
        f"precision={'-' if precision is None else f'{precision:.2f}'} "
        f"recall={'-' if recall is None else f'{recall:.2f}'}"
    )
    return record, detail


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on malformed flags
        return exc.code if isinstance(exc.code, int) else contract.EXIT_USAGE
    environ = os.environ
    try:
        partitions = contract.resolve_partitions(args.partitions, environ)
        output = contract.resolve_output(args.output, environ)
        end = contract.logical_date(environ).replace(minute=0, second=0, microsecond=0)
        window = contract.option(args.window, environ, WINDOW_ENV, DEFAULT_WINDOW, int)
        threshold = contract.option(
            args.threshold, environ, THRESHOLD_ENV, DEFAULT_THRESHOLD, float
        )
        if window % 2 == 0 or not 3 <= window <= MAX_WINDOW:
            raise contract.UsageError(f"window must be odd and 3-{MAX_WINDOW}, got {window}")
        if not 0 < threshold < math.inf:
            raise contract.UsageError(f"threshold must be a positive number, got {threshold}")
    except contract.UsageError as exc:
        print(f"{MODEL}: error: {exc}", file=sys.stderr)
        return contract.EXIT_USAGE
    return contract.run(
        model=MODEL,
        label="sensor",
        partitions=partitions,
        process=lambda sensor_id: scan_sensor(sensor_id, end, window, threshold),
        output=output,
        context=f"end={contract.isoformat(end)} window={window} threshold={threshold}",
    )
