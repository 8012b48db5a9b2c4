"""cdk-nag, cfn-lint, the pinned CDK CLI, and importing an existing VPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3

from config import ENVIRONMENTS, EnvironmentConfig, NetworkConfig, Pool
from stacks.jobs_stack import JobsStack
from stacks.platform_app import build_app, synth
from tests.conftest import REPO, Synthesized


def test_nag_passes_with_every_acknowledgement_reasoned(synthesized: Synthesized) -> None:
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    # No plugin (cdk-nag, CDK's own CloudFormation validation) reported anything.
    assert report["pluginReports"] == []
    acknowledged = 0
    for stage in synthesized.stages.values():
        for construct in stage.node.find_all():
            for entry in construct.node.metadata:
                if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    for rule, reason in entry.data.items():
                        acknowledged += 1
                        assert len(reason) > 40, (construct.node.path, rule, reason)
    assert acknowledged > 0


def test_nag_refuses_an_unacknowledged_finding(tmp_path: Path) -> None:
    def careless(stack: JobsStack) -> None:
        group = ec2.SecurityGroup(stack, "Open", vpc=stack.platform.vpc)
        group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(22))
        s3.Bucket(stack, "Plain")

    app, stages = build_app(
        {"dev": ENVIRONMENTS["dev"]}, {"careless": careless}, outdir=str(tmp_path)
    )
    with pytest.raises(Exception, match="ValidationFailed"):
        synth(app, stages)
    report = (tmp_path / "validation-report.json").read_text()
    for rule in (
        "AwsSolutions-EC23",
        "AwsSolutions-S10",
        "AwsSolutions-S1",
        "NIST.800.53.R5-EC2RestrictedSSH",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
    ):
        assert rule in report, rule
    assert not (tmp_path / "manifests").exists()


def test_cfn_lint_is_clean(synthesized: Synthesized) -> None:
    from jobs import JOB_GROUPS

    templates = [str(path) for path in synthesized.templates()]
    # Per environment: network, compute, Airflow, monitoring, and a stack per job group.
    assert len(templates) == len(synthesized.stages) * (4 + len(JOB_GROUPS))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_checkov_finds_nothing_and_every_skip_says_why(synthesized: Synthesized) -> None:
    checkov = REPO / "tools" / "checkov" / ".venv" / "bin" / "checkov"
    assert checkov.exists(), "checkov is installed by `make install` (tools/checkov)"
    result = subprocess.run(
        [str(checkov), "--directory", str(synthesized.outdir), "--framework", "cloudformation",
         "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r["check_type"] == "cloudformation"]
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and summary["parsing_errors"] == 0, failed
    assert summary["passed"] > 300  # it really read the templates
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment") or "") > 40, skipped["check_id"]


def test_the_pinned_cdk_cli_synthesizes_the_app(tmp_path: Path) -> None:
    env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [
            str(REPO / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--quiet",
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "manifests" / "dev.json").is_file()
    assert (tmp_path / "out" / "assembly-prod").is_dir()


def test_an_existing_vpc_is_imported_from_committed_context(tmp_path: Path) -> None:
    shared = EnvironmentConfig(
        name="shared",
        account="111111111111",
        region="eu-west-1",
        network=NetworkConfig(
            vpc_id="vpc-0123456789abcdef0", nat_gateways=1, interface_endpoints=False
        ),
        pools=(Pool("batch", 10),),
        default_pool="batch",
    )
    context = json.loads((REPO / "tests" / "fixtures" / "vpc-lookup.context.json").read_text())
    app, stages = build_app({"shared": shared}, {}, outdir=str(tmp_path), context=context)
    synth(app, stages)
    assert json.loads((tmp_path / "manifest.json").read_text()).get("missing") is None
    network = next((tmp_path / "assembly-shared").glob("sharedNetwork*.template.json"))
    assert '"AWS::EC2::VPC"' not in network.read_text()
    manifest = json.loads((tmp_path / "manifests" / "shared.json").read_text())
    assert manifest["network"]["subnets"] == [
        "subnet-0aaaaaaaaaaaaaaa1",
        "subnet-0aaaaaaaaaaaaaaa2",
    ]
    assert manifest["region"] == "eu-west-1"


def test_synth_summary_shows_what_sizes_a_run(synthesized: Synthesized) -> None:
    from tools.synth_summary import summarize

    summary = summarize(synthesized.outdir)
    lines = summary.splitlines()
    for needle in (
        "== environment dev",
        "== environment prod",
        "dev-Jobs-pricing",
        "prod-Airflow",
        "schedule (UTC)",
        "tasks/run",
        "retries",
        "timeout/task",
    ):
        assert needle in summary, needle  # fmt: skip
    forecast = next(line for line in lines if line.startswith("location-forecast"))
    assert forecast.split() == [
        "location-forecast", "0", "*/3", "*", "*", "*", "512/1024", "2000", "1", "2000",
        "forecast", "spot", "2", "x", "from", "2", "min", "30", "min",
    ]  # fmt: skip
    # Pools show their slots next to the jobs (and tasks per run) that share them.
    pool = next(line for line in lines if line.startswith("forecast "))
    assert pool.split()[:2] == ["forecast", "50"]
    assert "location-forecast (2000 tasks/run, 1 slot each)" in pool


def test_the_venv_holds_aws_cdk_libs_own_cloud_assembly_schema() -> None:
    """Two distributions ship aws_cdk/cloud_assembly_schema/__init__.py; `make install`
    reinstalls aws-cdk-lib last so its copy, the one its cx_api accepts, is the one used."""
    import base64
    import hashlib
    from importlib import metadata

    import aws_cdk.cloud_assembly_schema as schema

    (entry,) = [
        f
        for f in metadata.files("aws-cdk-lib") or []
        if str(f) == "aws_cdk/cloud_assembly_schema/__init__.py"
    ]
    assert entry.hash is not None
    digest = hashlib.sha256(Path(schema.__file__).read_bytes()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == entry.hash.value
