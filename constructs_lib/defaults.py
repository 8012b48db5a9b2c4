"""CDK-side defaults and platform constants (merged with job props in MlJob).

Limits and defaults the runtime shares live in ``ml_platform.contract``; the durations
here are those values as CDK Durations.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs

from config.model import RemovalPolicy
from ml_platform import contract

#: Every job's model container has this name; the manifest carries it for overrides.
CONTAINER_NAME = "model"
#: awslogs-stream-prefix; a task's stream is "job/model/<task id>".
LOG_STREAM_PREFIX = "job"

# Job defaults (documented on MlJob), from the contract.
DEFAULT_RETRY_DELAY = cdk.Duration.seconds(contract.DEFAULT_RETRY_DELAY_SECONDS)
DEFAULT_MAX_RETRY_DELAY = cdk.Duration.seconds(contract.DEFAULT_MAX_RETRY_DELAY_SECONDS)
DEFAULT_EXECUTION_TIMEOUT = cdk.Duration.seconds(contract.DEFAULT_EXECUTION_TIMEOUT_SECONDS)

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
