"""Least privilege and safe defaults, proven over every synthesized template of every
environment (not only the example that a unit test builds)."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from config import ENVIRONMENTS, AirflowBackend
from constructs_lib.job_checks import SECRET_LIKE
from tests.conftest import EXAMPLE_JOBS, Synthesized

#: One environment per Airflow backend: every test below runs over both.
ENVS = ["dev", "prod"]
assert {ENVIRONMENTS[env].airflow.backend for env in ENVS} == set(AirflowBackend)
#: The role each backend runs the jobs with: MWAA's execution role, or the task role of
#: the self-hosted scheduler and triggerers.
AIRFLOW_JOB_ROLE = {
    AirflowBackend.MWAA: "MwaaExecutionRole",
    AirflowBackend.SELF_HOSTED: "SelfHostedJobRole",
}
# Values that look like credentials, whatever the variable is called.
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN|password=|://[^/\s:]+:[^@\s]+@", re.I)


def resources(
    synthesized: Synthesized, kind: str, env: str | None = None
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(template file, logical id, resource) of every resource of ``kind``."""
    for path in synthesized.templates():
        if env is not None and path.parent.name != f"assembly-{env}":
            continue
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            if resource["Type"] == kind:
                yield path.name, logical_id, resource


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of_role(
    synthesized: Synthesized, env: str, role_id_part: str
) -> list[dict[str, Any]]:
    return [
        statement
        for _, _, policy in resources(synthesized, "AWS::IAM::Policy", env)
        if role_id_part in json.dumps(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def airflow_statements(synthesized: Synthesized, env: str) -> list[dict[str, Any]]:
    role = AIRFLOW_JOB_ROLE[ENVIRONMENTS[env].airflow.backend]
    statements = statements_of_role(synthesized, env, role)
    assert statements, role
    return statements


# -- Airflow's role ---------------------------------------------------------------------


def arn_text(value: Any) -> str:
    """An ARN as IAM will see it, deploy-time values as <Ref> placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(arn_text(part) for part in parts)
    return f"<{next(iter(value))}>"


def only_statement(statements: list[dict[str, Any]], actions: set[str]) -> dict[str, Any]:
    matching = [s for s in statements if actions & set(as_list(s["Action"]))]
    assert len(matching) == 1, matching
    return matching[0]


def other_environments(env: str) -> list[str]:
    return [other for other in ENVS if other != env]


@pytest.mark.parametrize("env", ENVS)
def test_airflow_runs_this_environments_job_families_and_nothing_else(
    synthesized: Synthesized, env: str
) -> None:
    statement = only_statement(
        airflow_statements(synthesized, env), {"ecs:RunTask", "ecs:StartTask", "ecs:*", "*"}
    )
    assert as_list(statement["Action"]) == ["ecs:RunTask"]
    (pattern,) = (arn_text(r) for r in as_list(statement["Resource"]))
    assert pattern.endswith(f":task-definition/mlp-{env}-*:*"), pattern
    family_pattern = pattern.split(":task-definition/")[1].removesuffix(":*")
    # Every job of this environment matches; no job of another environment does.
    for job in synthesized.manifest(env)["jobs"]:
        assert fnmatch.fnmatchcase(job["task_definition_family"], family_pattern)
    for other in other_environments(env):
        for job in synthesized.manifest(other)["jobs"]:
            assert not fnmatch.fnmatchcase(job["task_definition_family"], family_pattern)
    # Nor Airflow's own task definitions (self-hosted: api-server, scheduler, init, ...).
    jobs = {job["task_definition_family"] for job in synthesized.manifest(env)["jobs"]}
    for _, _, definition in resources(synthesized, "AWS::ECS::TaskDefinition", env):
        family = definition["Properties"]["Family"]
        assert (family in jobs) == fnmatch.fnmatchcase(family, family_pattern), family
    # Only on this environment's cluster, exported by its Compute stack.
    assert list(statement["Condition"]["ArnEquals"]) == ["ecs:cluster"]
    cluster = statement["Condition"]["ArnEquals"]["ecs:cluster"]
    assert cluster["Fn::ImportValue"].startswith(f"{env}-Compute:")
    assert "Cluster" in cluster["Fn::ImportValue"] and "Arn" in cluster["Fn::ImportValue"]


@pytest.mark.parametrize("env", ENVS)
def test_airflow_passes_only_its_environments_job_roles_and_only_to_ecs_tasks(
    synthesized: Synthesized, env: str
) -> None:
    statement = only_statement(airflow_statements(synthesized, env), {"iam:PassRole", "iam:*"})
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    (pattern,) = (arn_text(r) for r in as_list(statement["Resource"]))
    assert pattern.endswith(f":role/mlp-{env}/jobs/*"), pattern
    passable = f"/mlp-{env}/jobs/"
    # The roles under that path are exactly the jobs' task and execution roles.
    under_path, job_roles = set(), set()
    for template, logical_id, role in resources(synthesized, "AWS::IAM::Role", env):
        if role["Properties"].get("Path", "/") == passable:
            under_path.add(logical_id)
        trusted = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        if "Jobs" in template and "ecs-tasks.amazonaws.com" in trusted:
            job_roles.add(logical_id)
    assert under_path == job_roles
    assert len(job_roles) == 2 * len(synthesized.manifest(env)["jobs"])
    for other in other_environments(env):
        for _, _, role in resources(synthesized, "AWS::IAM::Role", other):
            assert not role["Properties"].get("Path", "/").startswith(passable)


@pytest.mark.parametrize("env", ENVS)
def test_airflow_reads_logs_only_of_its_environments_jobs_and_its_own(
    synthesized: Synthesized, env: str
) -> None:
    reads = [
        s
        for s in airflow_statements(synthesized, env)
        if any(
            a.startswith(("logs:Get", "logs:Filter")) or a == "logs:*" for a in as_list(s["Action"])
        )
    ]
    groups = {arn_text(r).split(":log-group:")[1] for s in reads for r in as_list(s["Resource"])}
    # Airflow's own logs: MWAA's log groups, or the self-hosted task-log group.
    own = {g for g in groups if g.startswith((f"airflow-mlp-{env}-", f"/mlp-{env}/airflow/"))}
    if ENVIRONMENTS[env].airflow.backend is AirflowBackend.SELF_HOSTED:
        assert own, groups  # task logs, read back by the UI
    assert groups - own == {f"/mlp-{env}/jobs/*", f"/mlp-{env}/jobs/*:log-stream:*"}
    # The log groups under that prefix, in any environment, are exactly this one's jobs'.
    under_prefix = {
        group["Properties"].get("LogGroupName")
        for _, _, group in resources(synthesized, "AWS::Logs::LogGroup")
        if str(group["Properties"].get("LogGroupName", "")).startswith(f"/mlp-{env}/jobs/")
    }
    assert under_prefix == {job["logs"]["group"] for job in synthesized.manifest(env)["jobs"]}


@pytest.mark.parametrize("env", ENVS)
def test_airflow_has_no_wildcard_actions_on_ecs_iam_or_everything(
    synthesized: Synthesized, env: str
) -> None:
    for statement in airflow_statements(synthesized, env):
        for action in as_list(statement["Action"]):
            assert action not in ("*", "ecs:*", "iam:*", "logs:*", "s3:*"), statement


# -- the jobs' roles ----------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_a_jobs_task_role_has_nothing_it_was_not_granted(
    synthesized: Synthesized, env: str
) -> None:
    # The example jobs grant their model nothing; a grant would show up here.
    task_roles = [
        d["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
        for _, _, d in resources(synthesized, "AWS::ECS::TaskDefinition", env)
        if d["Properties"]["Family"].removeprefix(f"mlp-{env}-") in EXAMPLE_JOBS
    ]
    assert len(task_roles) == len(EXAMPLE_JOBS)
    for role_id in task_roles:
        assert statements_of_role(synthesized, env, f'"{role_id}"') == []
        (role,) = [r for _, i, r in resources(synthesized, "AWS::IAM::Role", env) if i == role_id]
        assert "ManagedPolicyArns" not in role["Properties"]
        assert "Policies" not in role["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_a_jobs_execution_role_writes_only_its_own_log_group(
    synthesized: Synthesized, env: str
) -> None:
    for _, _, definition in resources(synthesized, "AWS::ECS::TaskDefinition", env):
        role_id = definition["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
        (container,) = definition["Properties"]["ContainerDefinitions"]
        group = json.dumps(container["LogConfiguration"]["Options"]["awslogs-group"])
        group_id = json.loads(group)["Ref"]
        writes = [
            statement
            for statement in statements_of_role(synthesized, env, f'"{role_id}"')
            if any(a.startswith("logs:") for a in as_list(statement["Action"]))
        ]
        assert writes
        for statement in writes:
            assert group_id in json.dumps(statement["Resource"]), statement


# -- network --------------------------------------------------------------------------------


def test_no_security_group_admits_the_internet(synthesized: Synthesized) -> None:
    rules = [
        rule
        for _, _, group in resources(synthesized, "AWS::EC2::SecurityGroup")
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ] + [r["Properties"] for _, _, r in resources(synthesized, "AWS::EC2::SecurityGroupIngress")]
    assert rules
    for rule in rules:
        assert rule.get("CidrIp") != "0.0.0.0/0" and rule.get("CidrIpv6") != "::/0", rule


@pytest.mark.parametrize("env", ENVS)
def test_tasks_get_no_public_ip_and_run_in_private_subnets(
    synthesized: Synthesized, env: str
) -> None:
    network = synthesized.manifest(env)["network"]
    assert network["assign_public_ip"] is False
    subnets = {
        logical_id: subnet
        for _, logical_id, subnet in resources(synthesized, "AWS::EC2::Subnet", env)
    }
    assert not list(resources(synthesized, "AWS::EC2::InternetGateway", env))
    for placeholder in network["subnets"]:
        logical_id = placeholder.strip("${}")
        assert subnets[logical_id]["Properties"]["MapPublicIpOnLaunch"] is False


# -- data at rest ---------------------------------------------------------------------------


def test_every_bucket_is_private_encrypted_versioned_and_ssl_only(
    synthesized: Synthesized,
) -> None:
    buckets = list(resources(synthesized, "AWS::S3::Bucket"))
    # MWAA: the DAG bucket and its access logs; self-hosted: the load balancer's logs.
    per_backend = {AirflowBackend.MWAA: 2, AirflowBackend.SELF_HOSTED: 1}
    assert len(buckets) == sum(per_backend[ENVIRONMENTS[env].airflow.backend] for env in ENVS)
    policies = [
        (name, p["Properties"]) for name, _, p in resources(synthesized, "AWS::S3::BucketPolicy")
    ]
    for name, logical_id, bucket in buckets:
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, (name, logical_id)
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        (policy,) = [p for n, p in policies if n == name and p["Bucket"] == {"Ref": logical_id}]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["PolicyDocument"]["Statement"]
        ), logical_id


def test_every_log_group_has_retention_and_a_customer_key(synthesized: Synthesized) -> None:
    groups = list(resources(synthesized, "AWS::Logs::LogGroup"))
    for env in ENVS:
        names = {
            g["Properties"]["LogGroupName"]
            for _, _, g in resources(synthesized, "AWS::Logs::LogGroup", env)
        }
        jobs = {job["logs"]["group"] for job in synthesized.manifest(env)["jobs"]}
        airflow = {n for n in names if n.startswith(f"/mlp-{env}/airflow/")}
        database = {n for n in names if n.startswith(f"/aws/rds/instance/mlp-{env}-airflow/")}
        # Flow logs, one per job, and (self-hosted) each Airflow component's and the
        # database's: nothing that CloudWatch would create without retention or a key.
        assert names == {f"/mlp-{env}/vpc-flow-logs"} | jobs | airflow | database
        if ENVIRONMENTS[env].airflow.backend is AirflowBackend.SELF_HOSTED:
            assert {f"/mlp-{env}/airflow/{c}" for c in ("scheduler", "task-logs")} <= airflow
            assert len(database) == 2
    for name, logical_id, group in groups:
        assert group["Properties"]["RetentionInDays"] > 0, (name, logical_id)
        assert "KmsKeyId" in group["Properties"], (name, logical_id)


# -- secrets --------------------------------------------------------------------------------


def test_no_secret_travels_as_a_plaintext_variable(synthesized: Synthesized) -> None:
    variables: list[tuple[str, Any]] = []
    for _, _, definition in resources(synthesized, "AWS::ECS::TaskDefinition"):
        for container in definition["Properties"]["ContainerDefinitions"]:
            variables += [(v["Name"], v["Value"]) for v in container.get("Environment", [])]
    for _, _, function in resources(synthesized, "AWS::Lambda::Function"):
        variables += function["Properties"].get("Environment", {}).get("Variables", {}).items()
    for _, _, environment in resources(synthesized, "AWS::MWAA::Environment"):
        variables += environment["Properties"].get("AirflowConfigurationOptions", {}).items()
    assert variables
    for name, value in variables:
        assert not SECRET_LIKE.search(name), name
        assert not SECRET_VALUE.search(json.dumps(value)), name


# -- Airflow's web server ---------------------------------------------------------------------


def test_airflows_ui_is_as_private_as_config_says(synthesized: Synthesized) -> None:
    (mwaa,) = [e for _, _, e in resources(synthesized, "AWS::MWAA::Environment", "dev")]
    assert mwaa["Properties"]["WebserverAccessMode"] == "PUBLIC_ONLY"  # dev's config
    # Self-hosted: an internal load balancer, HTTPS only, reachable from the VPC only.
    (balancer,) = [b for _, _, b in resources(synthesized, LOAD_BALANCER, "prod")]
    assert balancer["Properties"]["Scheme"] == "internal"
    listeners = [listener for _, _, listener in resources(synthesized, LISTENER, "prod")]
    assert [(lr["Properties"]["Port"], lr["Properties"]["Protocol"]) for lr in listeners] == [
        (443, "HTTPS")
    ]
    (group_id,) = [g["Fn::GetAtt"][0] for g in balancer["Properties"]["SecurityGroups"]]
    (group,) = [
        g for _, i, g in resources(synthesized, "AWS::EC2::SecurityGroup", "prod") if i == group_id
    ]
    assert [(r["CidrIp"], r["FromPort"]) for r in group["Properties"]["SecurityGroupIngress"]] == [
        (ENVIRONMENTS["prod"].network.cidr, 443)
    ]


LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
