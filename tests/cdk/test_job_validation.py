"""Every way a user can get an MlJob wrong is refused at synth, naming job and field."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3

from constructs_lib.job import JobConfigError, JobImage, MlJob, Partitions
from tests.conftest import PlatformBench


def declare(bench: PlatformBench, **overrides: Any) -> MlJob:
    stack = bench.jobs_stack()
    props: dict[str, Any] = {
        "name": f"job-{stack.node.id.lower()}",
        "team": "tests",
        "image": JobImage.from_model("dynamic_pricing"),
        "schedule": "@hourly",
        "partitions": Partitions.static(["a", "b", "c"]),
    }
    props.update(overrides)
    return MlJob(stack, "Job", platform=bench.platform, **props)


def refused(bench: PlatformBench, field: str, allowed: str, **overrides: Any) -> str:
    """Declare a job and return the error, checking it names job, field and what is allowed."""
    with pytest.raises(JobConfigError) as caught:
        declare(bench, **overrides)
    message = str(caught.value)
    assert re.search(r"job '[^']*' in environment 'dev' is invalid", message), message
    assert f"field '{field}'" in message, message
    assert allowed in message, message
    return message


def test_a_valid_job_is_accepted(bench: PlatformBench) -> None:
    job = declare(bench)
    assert job.family == f"mlp-dev-{job.name}"


@pytest.mark.parametrize(
    ("cpu", "memory", "field", "allowed"),
    [
        (300, 512, "cpu", "256, 512, 1024, 2048, 4096, 8192, 16384"),
        (256, 4096, "memory_mib", "[512, 1024, 2048]"),
        (1024, 1024, "memory_mib", "2048-8192 in steps of 1024"),
        (4096, 31744, "memory_mib", "8192-30720 in steps of 1024"),
        (8192, 18432, "memory_mib", "16384-61440 in steps of 4096"),
        (16384, 36864, "memory_mib", "32768-122880 in steps of 8192"),
    ],
)
def test_invalid_fargate_size(
    bench: PlatformBench, cpu: int, memory: int, field: str, allowed: str
) -> None:
    refused(bench, field, allowed, cpu=cpu, memory_mib=memory)


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [(256, 512), (256, 2048), (512, 4096), (2048, 16384), (4096, 30720), (8192, 61440),
     (16384, 122880)],
)  # fmt: skip
def test_every_corner_of_the_fargate_table_is_accepted(
    bench: PlatformBench, cpu: int, memory: int
) -> None:
    declare(bench, cpu=cpu, memory_mib=memory)


def test_ephemeral_storage_out_of_range(bench: PlatformBench) -> None:
    refused(bench, "ephemeral_storage_gib", "21-200", ephemeral_storage_gib=10)


@pytest.mark.parametrize(
    ("schedule", "allowed"),
    [
        ("0 */3 * *", "has 4 fields; a cron expression has 5"),
        ("every hour", "'@hourly'"),
        ("0 0 * * * *", "has 6 fields"),
        ("61 * * * *", "the minute field '61' is not valid (allowed: 0-59)"),
        ("0 25 * * *", "the hour field '25' is not valid (allowed: 0-23)"),
        ("0 0 32 * *", "the day-of-month field '32' is not valid (allowed: 1-31)"),
        ("0 0 * 13 *", "the month field '13' is not valid (allowed: 1-12 or JAN-DEC)"),
        ("0 0 * * 9", "the day-of-week field '9' is not valid (allowed: 0-7 or SUN-SAT)"),
    ],
)
def test_bad_cron_names_the_field(bench: PlatformBench, schedule: str, allowed: str) -> None:
    refused(bench, "schedule", allowed, schedule=schedule)


@pytest.mark.parametrize("name", ["Forecast", "x", "has_underscore", "-lead", "double--dash",
                                  "a" * 41, "trailing-"])  # fmt: skip
def test_bad_name(bench: PlatformBench, name: str) -> None:
    refused(bench, "name", "lowercase letters, digits and single hyphens", name=name)


def test_duplicate_job_names(bench: PlatformBench) -> None:
    declare(bench, name="twice")
    with pytest.raises(JobConfigError, match=r"job 'twice': field 'name': duplicate job name"):
        declare(bench, name="twice")


def test_undeclared_pool(bench: PlatformBench) -> None:
    refused(bench, "pool", "declared: ['forecast', 'pricing', 'batch']", pool="gpu")


def test_pool_slots_above_pool_size(bench: PlatformBench) -> None:
    refused(bench, "pool_slots", "1-20", pool="pricing", pool_slots=21)


@pytest.mark.parametrize("retries", [-1, 11])
def test_retries_out_of_range(bench: PlatformBench, retries: int) -> None:
    refused(bench, "retries", "0-10", retries=retries)


def test_missing_dockerfile(bench: PlatformBench) -> None:
    refused(bench, "image", "no Dockerfile in 'tests'", image=JobImage.from_directory("tests"))
    refused(bench, "image", "no model package", image=JobImage.from_model("nope"))


def test_ecr_image_needs_exactly_one_of_tag_and_digest(bench: PlatformBench) -> None:
    stack = bench.jobs_stack()
    repo = ecr.Repository.from_repository_name(stack, "Repo", "models/x")
    with pytest.raises(JobConfigError, match="exactly one of tag or digest"):
        MlJob(
            stack,
            "Job",
            platform=bench.platform,
            name="ecr-job",
            team="t",
            image=JobImage.from_ecr(repo),
        )
    with pytest.raises(JobConfigError, match="'sha256:' \\+ 64 hex"):
        MlJob(
            stack,
            "Job2",
            platform=bench.platform,
            name="ecr-job",
            team="t",
            image=JobImage.from_ecr(repo, digest="sha256:abc"),
        )


@pytest.mark.parametrize("chunk_size", [0, -3])
def test_chunk_size_below_one(bench: PlatformBench, chunk_size: int) -> None:
    refused(bench, "chunk_size", "must be an integer >= 1", chunk_size=chunk_size)


def test_fan_out_above_max_map_length(bench: PlatformBench) -> None:
    values = [f"p{i}" for i in range(5000)]
    refused(
        bench,
        "chunk_size",
        "max_map_length 4096; raise chunk_size",
        partitions=Partitions.static(values),
    )


def test_empty_and_duplicate_partitions(bench: PlatformBench) -> None:
    refused(bench, "partitions", "at least one", partitions=Partitions.static([]))
    refused(bench, "partitions", "duplicate values ['a']", partitions=Partitions.static(["a", "a"]))


def test_s3_partition_key(bench: PlatformBench) -> None:
    stack = bench.jobs_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Data", "data")
    with pytest.raises(JobConfigError, match=r"field 'partitions': S3 key '/x\.json'"):
        MlJob(
            stack,
            "Job",
            platform=bench.platform,
            name="s3-job",
            team="t",
            image=JobImage.from_model("dynamic_pricing"),
            partitions=Partitions.from_s3(bucket, "/x.json"),
        )


def test_secret_looking_plaintext_variable(bench: PlatformBench) -> None:
    refused(bench, "environment", "pass it in 'secrets'", environment={"DB_PASSWORD": "x"})


def test_reserved_and_malformed_variables(bench: PlatformBench) -> None:
    refused(
        bench,
        "environment",
        "'ML_PARTITIONS' is set by the platform",
        environment={"ML_PARTITIONS": "[]"},
    )
    refused(bench, "environment", "'1BAD' is not a valid variable name", environment={"1BAD": "x"})


def test_secret_must_be_an_ecs_secret(bench: PlatformBench) -> None:
    refused(
        bench,
        "secrets",
        "from_secrets_manager or from_ssm_parameter",
        secrets={"API_KEY": "plaintext"},
    )


def test_command_must_be_a_list(bench: PlatformBench) -> None:
    refused(bench, "command", "list of strings", command="--horizon 24")


def test_missing_team(bench: PlatformBench) -> None:
    refused(bench, "team", "owning team", team="")


def test_retry_delays(bench: PlatformBench) -> None:
    refused(
        bench,
        "max_retry_delay",
        "at least retry_delay",
        retry_delay=cdk.Duration.hours(2),
        max_retry_delay=cdk.Duration.hours(1),
    )


def test_execution_timeout_too_short(bench: PlatformBench) -> None:
    refused(bench, "execution_timeout", "at least 60 s", execution_timeout=cdk.Duration.seconds(30))


def test_max_active_runs(bench: PlatformBench) -> None:
    refused(bench, "max_active_runs", "1-16", max_active_runs=0)


def test_capacity_must_be_a_capacity(bench: PlatformBench) -> None:
    refused(bench, "capacity", "'on-demand', 'spot', 'spot-with-fallback'", capacity="cheap")


def test_bad_tags(bench: PlatformBench) -> None:
    refused(bench, "tags", "not starting with 'aws:'", tags={"aws:owner": "x"})
    refused(bench, "tags", "0-256", tags={"note": "x" * 300})


def test_all_problems_are_listed_at_once(bench: PlatformBench) -> None:
    message = refused(bench, "cpu", "allowed", cpu=300, retries=-1, chunk_size=0, pool="gpu")
    for field in ("cpu", "retries", "chunk_size", "pool"):
        assert f"field '{field}'" in message


def test_a_refused_job_adds_nothing(bench: PlatformBench) -> None:
    stack = bench.jobs_stack()
    registered = len(bench.platform.jobs)
    with pytest.raises(JobConfigError):
        MlJob(
            stack,
            "Job",
            platform=bench.platform,
            name="half-written",
            team="t",
            image=JobImage.from_model("dynamic_pricing"),
            cpu=300,
        )
    assert len(bench.platform.jobs) == registered
    assert not [c for c in stack.node.find_all() if isinstance(c, cdk.CfnResource)]


def test_token_valued_fields_are_not_validated(bench: PlatformBench) -> None:
    stack = bench.jobs_stack()
    size = cdk.CfnParameter(stack, "Cpu", type="Number").value_as_number
    job = MlJob(
        stack,
        "Job",
        platform=bench.platform,
        name="token-size",
        team="t",
        image=JobImage.from_model("dynamic_pricing"),
        cpu=size,
        memory_mib=size,
        cpu_architecture=ecs.CpuArchitecture.ARM64,
    )
    assert cdk.Token.is_unresolved(job.declaration.cpu)
