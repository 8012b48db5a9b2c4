"""Anomaly detection per sensor series, one container run per chunk of sensors."""

from .cli import main

__all__ = ["main"]
