"""Command line: recommend a margin-maximising price for each market partition."""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import datetime

import model_contract as contract

from . import synthetic
from .pricing import fit_elasticity, margin, optimal_price

MODEL = "dynamic_pricing"
DEFAULT_MIN_RATIO = 0.7
DEFAULT_MAX_RATIO = 1.3
MIN_RATIO_ENV = "PRICING_MIN_RATIO"
MAX_RATIO_ENV = "PRICING_MAX_RATIO"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=MODEL,
        description="Fit price elasticity per market and recommend the best price in bounds.",
    )
    contract.add_contract_arguments(parser)
    parser.add_argument(
        "--min-ratio",
        type=float,
        help=f"lowest allowed price as a share of the list price "
        f"(default: ${MIN_RATIO_ENV} or {DEFAULT_MIN_RATIO})",
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        help=f"highest allowed price as a share of the list price "
        f"(default: ${MAX_RATIO_ENV} or {DEFAULT_MAX_RATIO})",
    )
    return parser


def price_market(
    market_id: str, as_of: datetime, min_ratio: float, max_ratio: float
) -> tuple[contract.Record, str]:
    market, prices, units = synthetic.observations(market_id)
    fit = fit_elasticity(prices, units)
    min_price = market.list_price * min_ratio
    max_price = market.list_price * max_ratio
    best = optimal_price(fit, unit_cost=market.unit_cost, min_price=min_price, max_price=max_price)
    bound = None
    if math.isclose(best, min_price, rel_tol=1e-6):
        bound = "min"
    elif math.isclose(best, max_price, rel_tol=1e-6):
        bound = "max"
    # Prices are quoted in cents; clamp again in case rounding crossed a bound.
    price = min(max(round(best, 2), min_price), max_price)
    expected = margin(fit, price, market.unit_cost)
    at_list = margin(fit, market.list_price, market.unit_cost)
    warnings = []
    if fit.elasticity > -1:
        warnings.append("fitted demand is inelastic, so margin rises up to the upper bound")
    record: contract.Record = {
        "market_id": market_id,
        "as_of": contract.isoformat(as_of),
        "list_price": market.list_price,
        "unit_cost": market.unit_cost,
        "price_bounds": [round(min_price, 4), round(max_price, 4)],
        "elasticity": round(fit.elasticity, 4),
        "elasticity_stderr": round(fit.stderr, 4),
        "r2": round(fit.r2, 4),
        "observations": fit.n,
        "optimal_price": round(price, 4),
        "binding_bound": bound,
        "expected_units": round(fit.units(price), 3),
        "expected_revenue": round(price * fit.units(price), 2),
        "expected_margin": round(expected, 2),
        "list_price_margin": round(at_list, 2),
        "margin_uplift_pct": round(100 * (expected - at_list) / abs(at_list), 2)
        if at_list
        else None,
        "warnings": warnings,
    }
    detail = (
        f"elasticity={fit.elasticity:.3f} price={price:.2f} list_price={market.list_price:.2f} "
        f"bound={bound or '-'}"
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
        as_of = contract.logical_date(environ)
        min_ratio = contract.option(
            args.min_ratio, environ, MIN_RATIO_ENV, DEFAULT_MIN_RATIO, float
        )
        max_ratio = contract.option(
            args.max_ratio, environ, MAX_RATIO_ENV, DEFAULT_MAX_RATIO, float
        )
        if not 0 < min_ratio <= max_ratio or not math.isfinite(max_ratio):
            raise contract.UsageError(
                f"price ratios must satisfy 0 < min <= max, got {min_ratio} and {max_ratio}"
            )
    except contract.UsageError as exc:
        print(f"{MODEL}: error: {exc}", file=sys.stderr)
        return contract.EXIT_USAGE
    return contract.run(
        model=MODEL,
        label="market",
        partitions=partitions,
        process=lambda market_id: price_market(market_id, as_of, min_ratio, max_ratio),
        output=output,
        context=f"as_of={contract.isoformat(as_of)} min_ratio={min_ratio} max_ratio={max_ratio}",
    )
