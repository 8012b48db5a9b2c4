"""Hourly demand forecasts per location, one container run per chunk of locations."""

from .cli import main

__all__ = ["main"]
