"""Command line: forecast the next hours of demand for each location partition."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

import model_contract as contract

from . import synthetic
from .forecast import SEASON, backtest, fit

MODEL = "location_forecast"
HISTORY_HOURS = 21 * 24
DEFAULT_HORIZON = 24
MAX_HORIZON = 7 * 24
HORIZON_ENV = "FORECAST_HORIZON_HOURS"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=MODEL,
        description="Forecast hourly demand per location with additive Holt-Winters.",
    )
    contract.add_contract_arguments(parser)
    parser.add_argument(
        "--horizon",
        type=int,
        help=f"hours to forecast, 1-{MAX_HORIZON} (default: ${HORIZON_ENV} or {DEFAULT_HORIZON})",
    )
    return parser


def forecast_location(
    location_id: str, origin: datetime, horizon: int
) -> tuple[contract.Record, str]:
    """Backtest on the latest ``horizon`` hours, refit on everything, forecast from origin."""
    indices, values = synthetic.history(location_id, origin, HISTORY_HOURS)
    hours = [index % SEASON for index in indices]
    check = backtest(values, hours, horizon)
    # Refit on the full history with the parameters chosen without the held-out hours.
    model = fit(values, hours, alpha=check.alpha, beta=check.beta, gamma=check.gamma)
    start = synthetic.hour_index(origin)
    future = list(range(start, start + horizon))
    predicted = model.forecast([index % SEASON for index in future])
    points = [
        {
            "timestamp": contract.isoformat(origin + step * synthetic.HOUR),
            "hour_of_day": index % SEASON,
            "demand": round(max(0.0, value), 3),
        }
        for step, (index, value) in enumerate(zip(future, predicted, strict=True))
    ]
    record: contract.Record = {
        "location_id": location_id,
        "origin": contract.isoformat(origin),
        "horizon_hours": horizon,
        "history_hours": len(values),
        "method": "holt_winters_additive",
        "params": {"alpha": check.alpha, "beta": check.beta, "gamma": check.gamma},
        "backtest": {
            "mape": round(check.mape, 3),
            "mean_mape": round(check.mean_mape, 3),
            "seasonal_naive_mape": round(check.seasonal_naive_mape, 3),
        },
        "forecast": points,
    }
    detail = f"horizon={horizon} mape={check.mape:.2f} mean_mape={check.mean_mape:.2f}"
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
        # The forecast starts at the scheduled hour, whatever minute the task started.
        origin = contract.logical_date(environ).replace(minute=0, second=0, microsecond=0)
        horizon = contract.option(args.horizon, environ, HORIZON_ENV, DEFAULT_HORIZON, int)
        if not 1 <= horizon <= MAX_HORIZON:
            raise contract.UsageError(f"horizon must be 1-{MAX_HORIZON} hours, got {horizon}")
    except contract.UsageError as exc:
        print(f"{MODEL}: error: {exc}", file=sys.stderr)
        return contract.EXIT_USAGE
    return contract.run(
        model=MODEL,
        label="location",
        partitions=partitions,
        process=lambda location_id: forecast_location(location_id, origin, horizon),
        output=output,
        context=f"origin={contract.isoformat(origin)} horizon={horizon}",
    )
