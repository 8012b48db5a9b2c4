from __future__ import annotations

from aws_cdk import Duration

from constructs_lib.job import JobImage, MlJob, Partitions
from stacks.jobs_stack import JobsStack

LOCATIONS = [f"loc-{number:04d}" for number in range(1, 2001)]


def declare(stack: JobsStack) -> None:
    MlJob(
        stack,
        "LocationForecast",
        platform=stack.platform,
        name="location-forecast",
        description="24-hour demand forecast per location (Holt-Winters on hourly history)",
        team="forecasting",
        cost_center="cc-1042",
        image=JobImage.from_model("location_forecast"),
        command=["--horizon", "24"],
        cpu=512,
        memory_mib=1024,
        schedule="0 */3 * * *",
        partitions=Partitions.static(LOCATIONS),
        chunk_size=1,
        pool="forecast",
        retries=2,
        execution_timeout=Duration.minutes(30),
        # Launch to stop, Fargate start included: the cost estimate and slow-run alarm use it.
        expected_chunk_time=Duration.minutes(3),
    )
