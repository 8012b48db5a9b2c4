"""Margin-maximising price recommendations per market, one container run per chunk."""

from .cli import main

__all__ = ["main"]
