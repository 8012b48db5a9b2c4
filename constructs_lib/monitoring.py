"""What the on-call person sees: the alarm topic, each job's alarms, the platform's alarms
and the environment's dashboard, all from the job declarations.

Hand-written on ``aws_cloudwatch`` rather than cdk-monitoring-constructs (10.3.3, Apache
2.0, evaluated): for metrics we publish ourselves it saves nothing (every metric and
threshold is still ours), its defaults (3 of 3 datapoints, missing data as "missing", no
action) would all need overriding, its API is marked experimental, and the same alarms
and dashboard came out larger (18.5 KB against 15.9 KB) and slower to synthesize.

Metrics come from the runtime (``ml_platform.report`` and ``ml_platform.metrics``) under
the environment's namespace with ``Job`` and ``Team`` dimensions; both sides name them
by ``contract.MetricName``, so the alarms cannot drift from what is published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from ml_platform.contract import MetricName

FIVE_MINUTES = cdk.Duration.minutes(5)
#: Job metrics arrive once per run: no data between runs is not a problem.
NO_DATA_IS_FINE = cw.TreatMissingData.NOT_BREACHING
#: APIs whose throttled calls the fleet counts (``ThrottledCalls`` by ``Api``).
THROTTLED_APIS = ("RunTask", "DescribeTasks", "FilterLogEvents", "StopTask")


class AlarmTopic(Construct):
    """The environment's one SNS topic for alarms: encrypted with its own key (which
    CloudWatch may use to publish), TLS only, and the config's email subscriptions."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        topic_name: str,
        emails: Sequence[str],
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the alarm topic {topic_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch alarms publish to an encrypted topic only if the key lets them.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        self.topic = sns.Topic(
            self, "Topic", topic_name=topic_name, master_key=self.key, enforce_ssl=True
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.action = cw_actions.SnsAction(self.topic)


def job_metric(
    namespace: str, name: str, job: str, team: str, statistic: str, label: str | None = None
) -> cw.Metric:
    """A job's metric. A label turns an alarm into a metric-math query in the template, so
    alarms take none; the dashboard labels each line with its job."""
    return cw.Metric(
        namespace=namespace,
        metric_name=str(name),
        dimensions_map={"Job": job, "Team": team},
        statistic=statistic,
        period=FIVE_MINUTES,
        label=label,
    )


class JobAlarms(Construct):
    """A job's alarms, named ``<prefix>-<job>-<what>``: a failed run; the first chunk
    running later than ``max_start_delay_seconds`` after the scheduled time; and, if the
    job declared how long a chunk takes, a slowest chunk ``factor`` times longer."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        namespace: str,
        job: str,
        team: str,
        max_start_delay_seconds: int,
        expected_chunk_seconds: int | None,
        run_time_factor: float,
        action: cw.IAlarmAction,
    ) -> None:
        super().__init__(scope, id)

        def job_alarm(
            what: str,
            why: str,
            name: MetricName,
            statistic: str,
            threshold: float,
            comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        ) -> cw.Alarm:
            return cw.Alarm(
                self,
                what.title().replace("-", ""),
                alarm_name=f"{prefix}-{job}-{what}",
                alarm_description=f"Job {job} (team {team}): {why}",
                metric=job_metric(namespace, name, job, team, statistic),
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=1,
                treat_missing_data=NO_DATA_IS_FINE,
            )  # fmt: skip

        self.alarms = [
            job_alarm("failed-run", "a run ended with failed chunks. The DAG run's failed 'run' "
                  "tasks hold the reason and the container log.",
                  MetricName.CHUNKS_FAILED, "Sum", 1,
                  cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD),
            job_alarm("late-start", f"the first chunk ran more than {max_start_delay_seconds} s "
                  "after the scheduled time.",
                  MetricName.START_DELAY_SECONDS, "Maximum", max_start_delay_seconds),
        ]  # fmt: skip
        if expected_chunk_seconds is not None:
            limit = round(expected_chunk_seconds * run_time_factor)
            self.alarms.append(
                job_alarm("slow-run", f"a chunk ran longer than {limit} s ({run_time_factor:g} x "
                      f"the expected {expected_chunk_seconds} s).",
                      MetricName.SLOWEST_CHUNK_SECONDS, "Maximum", limit)
            )  # fmt: skip
        for alarm in self.alarms:
            alarm.add_alarm_action(action)


class PlatformAlarms(Construct):
    """Alarms about the platform rather than one job: throttled AWS calls sustained for
    five minutes, and the health metrics of the Airflow backend (given as alarms by the
    backend's construct, which knows its own metrics)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        namespace: str,
        throttled_calls_per_minute: int,
        airflow_health: Mapping[str, tuple[cw.IMetric, float, cw.ComparisonOperator, str]],
        action: cw.IAlarmAction,
    ) -> None:
        super().__init__(scope, id)
        throttled = {
            f"t{i}": cw.Metric(
                namespace=namespace,
                metric_name=str(MetricName.THROTTLED_CALLS),
                dimensions_map={"Api": api},
                statistic="Sum",
                period=cdk.Duration.minutes(1),
            )
            for i, api in enumerate(THROTTLED_APIS)
        }
        self.throttled = cw.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in throttled),
            using_metrics=throttled,
            period=cdk.Duration.minutes(1),
            label="throttled AWS calls a minute",
        )
        self.alarms = [
            cw.Alarm(
                self,
                "Throttling",
                alarm_name=f"{prefix}-platform-throttling",
                alarm_description=f"More than {throttled_calls_per_minute} throttled ECS or "
                "CloudWatch Logs calls a minute for 5 minutes: launches and log copies slow "
                "down. Check other users of the account's ECS API budget.",
                metric=self.throttled,
                threshold=throttled_calls_per_minute,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=5,
                treat_missing_data=NO_DATA_IS_FINE,
            )
        ]
        for key, (metric, threshold, comparison, why) in airflow_health.items():
            self.alarms.append(
                cw.Alarm(
                    self,
                    key,
                    alarm_name=f"{prefix}-airflow-{key.lower()}",
                    alarm_description=why,
                    metric=metric,
                    threshold=threshold,
                    comparison_operator=comparison,
                    evaluation_periods=3,
                    # No heartbeat at all is the worst case, not a quiet one.
                    treat_missing_data=cw.TreatMissingData.BREACHING,
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(action)


class PlatformDashboard(Construct):
    """One dashboard per environment: the platform row, then a row per job group with
    its jobs' runs, start delays, cost and running tasks."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        dashboard_name: str,
        namespace: str,
        groups: Mapping[str, Sequence[tuple[str, str]]],
        throttled: cw.IMetric,
        platform_alarms: Sequence[cw.IAlarm],
    ) -> None:
        super().__init__(scope, id)
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=cdk.Duration.days(1),
        )
        self.dashboard.add_widgets(
            cw.TextWidget(markdown="## Platform", width=24, height=1),
            cw.AlarmStatusWidget(alarms=list(platform_alarms), title="Platform alarms", width=8),
            cw.GraphWidget(title="Throttled AWS calls a minute", left=[throttled], width=8),
        )
        for group, jobs in groups.items():

            def metrics(
                name: str, statistic: str, jobs: Sequence[tuple[str, str]] = jobs
            ) -> list[cw.IMetric]:
                return [
                    job_metric(namespace, name, job, team, statistic, label=job)
                    for job, team in jobs
                ]

            self.dashboard.add_widgets(
                cw.TextWidget(markdown=f"## Jobs: {group}", width=24, height=1),
                cw.GraphWidget(
                    title="Chunks succeeded / failed",
                    left=metrics(MetricName.CHUNKS_SUCCEEDED, "Sum"),
                    right=metrics(MetricName.CHUNKS_FAILED, "Sum"),
                    width=6,
                ),
                cw.GraphWidget(
                    title="First chunk running after the hour (s)",
                    left=metrics(MetricName.START_DELAY_SECONDS, "Maximum"),
                    width=6,
                ),
                cw.GraphWidget(
                    title="Run and slowest chunk (s)",
                    left=metrics(MetricName.RUN_SECONDS, "Maximum"),
                    right=metrics(MetricName.SLOWEST_CHUNK_SECONDS, "Maximum"),
                    width=6,
                ),
                cw.GraphWidget(
                    title="Fargate cost per run (USD) / tasks running",
                    left=metrics(MetricName.RUN_COST_USD, "Sum"),
                    right=metrics(MetricName.RUNNING_TASKS, "Maximum"),
                    width=6,
                ),
            )
