"""Defaults and platform constants, in one place (merged with job props in MlJob)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs

from config.model import RemovalPolicy

#: Every job's model container has this name; the manifest carries it for overrides.
CONTAINER_NAME = "model"
#: awslogs-stream-prefix; a task's stream is "job/model/<task id>".
LOG_STREAM_PREFIX = "job"

# Job defaults (documented on MlJob).
DEFAULT_CPU = 256
DEFAULT_MEMORY_MIB = 512
DEFAULT_CHUNK_SIZE = 1
DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY = cdk.Duration.minutes(2)
DEFAULT_MAX_RETRY_DELAY = cdk.Duration.minutes(30)
DEFAULT_EXECUTION_TIMEOUT = cdk.Duration.hours(1)
MAX_RETRIES = 10
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")

#: Valid Fargate CPU units -> memory sizes (MiB), Linux, from the AWS table.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
EPHEMERAL_STORAGE_GIB = (21, 200)

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS, 7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS, 150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS, 2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}  # fmt: skip


def retention(days: int) -> logs.RetentionDays:
    return _RETENTION[days]


def removal(policy: RemovalPolicy) -> cdk.RemovalPolicy:
    return (
        cdk.RemovalPolicy.DESTROY if policy is RemovalPolicy.DESTROY else cdk.RemovalPolicy.RETAIN
    )
