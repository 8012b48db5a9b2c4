"""The environment's Airflow pools, in the two shapes Airflow takes them.

Deferred Fargate tasks must keep their slot (``include_deferred``): otherwise a pool of
20 lets thousands of tasks run at once, since each frees its slot when it defers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ml_platform.manifest import Pool


def import_document(pools: Iterable[Pool]) -> dict[str, dict[str, Any]]:
    """For ``airflow pools import FILE`` (local runs)."""
    return {
        pool.name: {
            "slots": pool.slots,
            "description": pool.description,
            "include_deferred": pool.include_deferred,
        }
        for pool in pools
    }


def bulk_upsert(pools: Iterable[Pool]) -> dict[str, Any]:
    """Body of the REST API's ``PATCH /pools``: create, or overwrite what exists (MWAA)."""
    return {
        "actions": [
            {
                "action": "create",
                "action_on_existence": "overwrite",
                "entities": [
                    {
                        "name": pool.name,
                        "slots": pool.slots,
                        "description": pool.description,
                        "include_deferred": pool.include_deferred,
                    }
                    for pool in pools
                ],
            }
        ]
    }
