"""The job catalog: each group becomes one stack of ``MlJob`` constructs per environment.

To add a job, add one ``MlJob(...)`` call to the group that owns it (README: "Add a job").
"""

from __future__ import annotations

from jobs import forecasting, monitoring, pricing
from stacks.platform_stage import JobGroup

JOB_GROUPS: dict[str, JobGroup] = {
    "forecasting": forecasting.declare,
    "pricing": pricing.declare,
    "monitoring": monitoring.declare,
}
