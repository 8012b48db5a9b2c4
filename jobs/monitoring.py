from __future__ import annotations

from aws_cdk import Duration

from constructs_lib.job import JobImage, MlJob, Partitions
from stacks.jobs_stack import JobsStack

SENSORS = [f"sensor-{number:03d}" for number in range(1, 301)]


def declare(stack: JobsStack) -> None:
    MlJob(
        stack,
        "AnomalyDetector",
        platform=stack.platform,
        name="anomaly-detector",
        description="Flags anomalous sensor readings with a rolling median / MAD score",
        team="monitoring",
        image=JobImage.from_model("anomaly_detector"),
        cpu=1024,
        memory_mib=2048,
        schedule="15 * * * *",
        partitions=Partitions.static(SENSORS),
        chunk_size=25,
        retries=1,
        execution_timeout=Duration.minutes(20),
        expected_chunk_time=Duration.minutes(5),
    )
