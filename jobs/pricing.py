from __future__ import annotations

from aws_cdk import Duration

from config.model import Capacity
from constructs_lib.job import JobImage, MlJob, Partitions
from stacks.jobs_stack import JobsStack

MARKETS = [f"market-{number:03d}" for number in range(1, 121)]


def declare(stack: JobsStack) -> None:
    MlJob(
        stack,
        "DynamicPricing",
        platform=stack.platform,
        name="dynamic-pricing",
        description="Margin-maximising price per market from a log-linear elasticity fit",
        team="pricing",
        cost_center="cc-2001",
        image=JobImage.from_model("dynamic_pricing"),
        cpu=256,
        memory_mib=512,
        schedule="@hourly",
        partitions=Partitions.static(MARKETS),
        pool="pricing",
        retries=3,
        retry_delay=Duration.minutes(1),
        execution_timeout=Duration.minutes(15),
        expected_chunk_time=Duration.minutes(2),
        # Prices must be out by a quarter past: never wait for spot capacity.
        capacity=Capacity.ON_DEMAND,
    )
