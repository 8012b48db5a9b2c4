"""The job catalog: every module in this package is a job group of ``MlJob`` constructs,
in stacks ``Jobs-<module name>``, ``-2``, ... per environment, as many as it needs (each
job's stack is recorded in ``stacks.json`` by ``make synth``; commit it).

A module joins the catalog by defining ``declare(stack: JobsStack) -> None``; one that does
not is refused, naming it, so a group that was written cannot be silently left out.
Modules whose names start with ``_`` are helpers, not groups. To add a job, add one
``MlJob(...)`` call to the group that owns it (README: "Add a job").
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from ml_platform.contract import DeclarationError
from stacks.platform_stage import JobGroup


class JobGroupError(DeclarationError):
    """A module in jobs/ that is not a job group."""


def discover() -> dict[str, JobGroup]:
    groups: dict[str, JobGroup] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        declare = getattr(importlib.import_module(f"{__name__}.{module.name}"), "declare", None)
        if not callable(declare):
            raise JobGroupError(
                f"jobs/{module.name}.py is not a job group: define "
                "`def declare(stack: JobsStack) -> None` in it (or name it _"
                f"{module.name}.py if it only helps other groups)"
            )
        groups[module.name] = declare
    return groups


JOB_GROUPS: dict[str, JobGroup] = discover()

#: Each job's stack in its group, recorded by ``make synth`` (constructs_lib/job_placement).
PLACEMENT_FILE = Path(__file__).with_name("stacks.json")
