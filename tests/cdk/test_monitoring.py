"""What the on-call person and the budget owner get from the templates: each job's alarms,
the platform's alarms per backend, one topic and one dashboard per environment, and the
monthly estimate in the synth summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config import ENVIRONMENTS
from ml_platform.contract import MetricName
from tests.conftest import EXAMPLE_JOBS, Synthesized


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def alarms_of(synthesized: Synthesized, env: str) -> dict[str, dict[str, Any]]:
    """Alarm name -> properties, over every stack of the environment."""
    found = {}
    for path in synthesized.outdir.glob(f"assembly-{env}/*.template.json"):
        template = json.loads(path.read_text())
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            found[alarm["Properties"]["AlarmName"]] = alarm["Properties"]
    return found


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_job_has_its_alarms_on_its_own_metrics(synthesized: Synthesized, env: str) -> None:
    alarms = alarms_of(synthesized, env)
    manifest = synthesized.manifest(env)
    namespace = manifest["observability"]["namespace"]
    factor = ENVIRONMENTS[env].monitoring.run_time_alarm_factor
    for job in manifest["jobs"]:
        if job["name"] not in EXAMPLE_JOBS:
            continue
        name = f"mlp-{env}-{job['name']}"
        failed, late = alarms[f"{name}-failed-run"], alarms[f"{name}-late-start"]
        dims = [{"Name": "Job", "Value": job["name"]}, {"Name": "Team", "Value": job["team"]}]
        assert (failed["MetricName"], failed["Namespace"]) == (MetricName.CHUNKS_FAILED, namespace)
        assert failed["Dimensions"] == dims and failed["Threshold"] == 1
        assert late["MetricName"] == MetricName.START_DELAY_SECONDS
        assert late["Threshold"] == job["max_start_delay_seconds"]
        # Runs are hourly or rarer: no data between them is no alarm.
        assert failed["TreatMissingData"] == late["TreatMissingData"] == "notBreaching"
        slow = alarms.get(f"{name}-slow-run")
        if job["expected_chunk_seconds"] is None:
            assert slow is None  # a chunk cannot outlast its timeout; a timeout fails the run
        else:
            assert slow["MetricName"] == MetricName.SLOWEST_CHUNK_SECONDS
            assert slow["Threshold"] == round(job["expected_chunk_seconds"] * factor)
        for alarm in (failed, late, slow):
            if alarm is not None:
                (action,) = alarm["AlarmActions"]
                assert "AlarmsTopic" in json.dumps(action)


def test_the_platform_alarms_follow_the_airflow_backend(synthesized: Synthesized) -> None:
    dev, prod = alarms_of(synthesized, "dev"), alarms_of(synthesized, "prod")
    for alarms, env in ((dev, "dev"), (prod, "prod")):
        throttling = alarms[f"mlp-{env}-platform-throttling"]
        assert throttling["EvaluationPeriods"] == 5
        assert {m["Id"] for m in throttling["Metrics"]} >= {"t0", "t1", "t2", "t3"}
    # MWAA: its heartbeats; missing heartbeats are the worst case.
    heartbeat = dev["mlp-dev-airflow-schedulerheartbeat"]
    assert heartbeat["Namespace"] == "AmazonMWAA" and heartbeat["TreatMissingData"] == "breaching"
    assert dev["mlp-dev-airflow-triggererheartbeat"]["MetricName"] == "TriggererHeartbeat"
    # Self-hosted: the services' running counts against the config, and the api-servers.
    triggerers = prod["mlp-prod-airflow-triggerers"]
    assert triggerers["Namespace"] == "ECS/ContainerInsights"
    assert triggerers["Threshold"] == 2 and triggerers["ComparisonOperator"] == "LessThanThreshold"
    assert prod["mlp-prod-airflow-schedulers"]["Threshold"] == 2
    assert prod["mlp-prod-airflow-apiservers"]["MetricName"] == "HealthyHostCount"


def test_one_encrypted_topic_per_environment_with_the_configured_subscribers(
    synthesized: Synthesized,
) -> None:
    for env, emails in (("dev", []), ("prod", ["ml-platform-oncall@example.com"])):
        template = synthesized.template(env, "Compute")
        (topic,) = resources(template, "AWS::SNS::Topic").values()
        assert topic["Properties"]["TopicName"] == f"mlp-{env}-alarms"
        assert "KmsMasterKeyId" in topic["Properties"]
        subscriptions = resources(template, "AWS::SNS::Subscription").values()
        assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == emails
        (policy,) = resources(template, "AWS::SNS::TopicPolicy").values()
        assert "aws:SecureTransport" in json.dumps(policy)
        (key,) = [
            k for k in resources(template, "AWS::KMS::Key").values()
            if "alarm topic" in k["Properties"]["Description"]
        ]  # fmt: skip
        assert "cloudwatch.amazonaws.com" in json.dumps(key["Properties"]["KeyPolicy"])


def test_the_dashboard_has_a_row_per_job_group(synthesized: Synthesized) -> None:
    template = synthesized.template("prod", "Monitoring")
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "mlp-prod"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for group in ("forecasting", "monitoring", "pricing"):
        assert f"## Jobs: {group}" in body
    for job in EXAMPLE_JOBS:
        assert job in body
    assert MetricName.RUN_COST_USD in body and MetricName.START_DELAY_SECONDS in body


def test_the_job_role_writes_metrics_only_into_its_namespace(synthesized: Synthesized) -> None:
    for env in ("dev", "prod"):
        template = synthesized.template(env, "Airflow")
        statements = [
            s
            for p in resources(template, "AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s["Action"] == "cloudwatch:PutMetricData"
        ]
        assert statements, env
        for statement in statements:
            assert statement["Condition"] == {
                "StringEquals": {"cloudwatch:namespace": f"MLPlatform/{env}"}
            }


def test_the_synth_summary_estimates_each_jobs_month(synthesized: Synthesized) -> None:
    """Worked by hand from config/prices.py (us-east-1, Spot 60% off)."""
    from tools.synth_summary import summarize

    text = summarize(synthesized.outdir)
    prod = text.split("== environment prod")[1]
    # location-forecast: 0.5 vCPU x 0.04048 + 1 GB x 0.004445 = 0.024685/h, Spot x 0.4
    # = 0.009874/h; 180 s a task: 0.0004937; x 2,000 tasks = $0.99 a run; 8 runs a day
    # over a 730-hour month (243.3 runs) = $240.27.
    assert "$0.99" in prod and "$240.27" in prod
    # dynamic-pricing, on demand: 0.25 x 0.04048 + 0.5 x 0.004445 = 0.0123425/h; 120 s
    # a task x 120 tasks = $0.05 a run; hourly = 730 runs = $36.04.
    assert "$36.04" in prod
    assert "Airflow $452.03" in prod  # the README's cost table, prod as shipped
    assert "120 s expected" in prod
