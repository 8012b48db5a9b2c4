"""What CloudFormation or IAM would refuse at deploy is refused at synth: each limit is
crossed once, on a template shaped as CDK writes it, and once through a whole synth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import CfnWaitConditionHandle

from stacks import quotas
from stacks.quotas import QuotaExceeded, estimated_chars, template_problems

ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {"AssumeRolePolicyDocument": {}, "Path": "/mlp-dev/jobs/"},
}


def handles(count: int) -> dict[str, Any]:
    return {
        f"Handle{n}": {"Type": "AWS::CloudFormation::WaitConditionHandle"} for n in range(count)
    }


def document(chars: int) -> dict[str, Any]:
    """A policy document of about ``chars`` characters, as IAM counts them."""
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/"}
    base = estimated_chars({"Version": "2012-10-17", "Statement": [statement]})
    statement["Resource"] += "k" * (chars - base)
    return {"Version": "2012-10-17", "Statement": [statement]}


def role_policy(chars: int) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyDocument": document(chars), "Roles": [{"Ref": "Role"}]},
    }


def managed_policy(chars: int = 100) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"PolicyDocument": document(chars), "Roles": [{"Ref": "Role"}]},
    }


def named(kind: str, field: str, length: int) -> dict[str, Any]:
    return {"Type": kind, "Properties": {field: "x" * length}}


JOB_ROLE = {**ROLE, "Properties": {**ROLE["Properties"], "ManagedPolicyArns": ["arn"] * 5}}

# (what is checked, a template just inside the limit, one just over it, the message)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("resources", {"Resources": handles(500)}, {"Resources": handles(501)},
     "501 resources, CloudFormation allows 500 per stack (most from: Handle0 (1)"),
    ("outputs", {"Outputs": {f"O{n}": {} for n in range(200)}},
     {"Outputs": {f"O{n}": {} for n in range(201)}}, "201 outputs, CloudFormation allows 200"),
    ("parameters", {"Parameters": {f"P{n}": {} for n in range(200)}},
     {"Parameters": {f"P{n}": {} for n in range(201)}},
     "201 parameters, CloudFormation allows 200"),
    ("mappings", {"Mappings": {f"M{n}": {} for n in range(200)}},
     {"Mappings": {f"M{n}": {} for n in range(201)}}, "201 mappings, CloudFormation allows 200"),
    ("managed policies per role",
     {"Resources": {"Role": JOB_ROLE, **{f"M{n}": managed_policy() for n in range(5)}}},
     {"Resources": {"Role": JOB_ROLE, **{f"M{n}": managed_policy() for n in range(6)}}},
     "role Role: 11 managed policies, IAM allows 10 per role"),
    ("inline policy characters per role",
     {"Resources": {"Role": ROLE, "P1": role_policy(5_120), "P2": role_policy(5_120)}},
     {"Resources": {"Role": ROLE, "P1": role_policy(5_120), "P2": role_policy(5_121)}},
     "role Role: inline policies of about 10,241 characters, IAM allows 10,240 per role"),
    ("managed policy characters",
     {"Resources": {"Role": ROLE, "M": managed_policy(6_144)}},
     {"Resources": {"Role": ROLE, "M": managed_policy(6_145)}},
     "managed policy M: about 6,145 characters, IAM allows 6,144 per managed policy"),
    ("role name", {"Resources": {"R": named("AWS::IAM::Role", "RoleName", 64)}},
     {"Resources": {"R": named("AWS::IAM::Role", "RoleName", 65)}},
     "R: role name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... has 65 characters, AWS allows 64"),
    ("role path", {"Resources": {"R": named("AWS::IAM::Role", "Path", 512)}},
     {"Resources": {"R": named("AWS::IAM::Role", "Path", 513)}}, "role path"),
    ("log group name", {"Resources": {"L": named("AWS::Logs::LogGroup", "LogGroupName", 512)}},
     {"Resources": {"L": named("AWS::Logs::LogGroup", "LogGroupName", 513)}},
     "has 513 characters, AWS allows 512"),
    ("task definition family",
     {"Resources": {"T": named("AWS::ECS::TaskDefinition", "Family", 255)}},
     {"Resources": {"T": named("AWS::ECS::TaskDefinition", "Family", 256)}},
     "T: task definition family"),
]  # fmt: skip


@pytest.mark.parametrize(("limit", "inside", "over", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_template_over_a_limit_is_refused_and_one_at_it_is_not(
    limit: str, inside: dict[str, Any], over: dict[str, Any], message: str
) -> None:
    assert template_problems(inside, size=1_000) == []
    (problem,) = template_problems(over, size=1_000)
    assert message in problem


def test_a_template_over_one_mb_is_refused() -> None:
    assert template_problems({}, size=quotas.MAX_TEMPLATE_BYTES) == []
    (problem,) = template_problems({}, size=quotas.MAX_TEMPLATE_BYTES + 1)
    assert "template of 1,048,577 bytes, CloudFormation allows 1,048,576" in problem


def test_policy_size_is_counted_without_whitespace_and_deploy_time_values_high() -> None:
    plain = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["a:B"]}]}
    assert estimated_chars(plain) == len(json.dumps(plain, separators=(",", ":")))
    arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "Bucket"}]]}
    # "arn:" + aws-us-gov (the longest partition) + ":s3:::" + 64 for the bucket, quoted.
    assert estimated_chars(arn) == len('"arn:aws-us-gov:s3:::"') + quotas.TOKEN_LENGTHS["Ref"]


def test_a_synth_over_a_limit_publishes_nothing_and_names_the_stack(tmp_path: Path) -> None:
    from config import ENVIRONMENTS
    from stacks.platform_app import build_app, synth

    def crowded(stack: Any) -> None:  # a group whose own resources overflow its stack
        for n in range(501):
            CfnWaitConditionHandle(stack, f"Handle{n}")

    outdir = tmp_path / "cdk.out"
    app, stages = build_app({"dev": ENVIRONMENTS["dev"]}, {"crowded": crowded}, outdir=str(outdir))
    with pytest.raises(QuotaExceeded) as refused:
        synth(app, stages)
    assert "stack dev/Jobs-crowded (dev-Jobs-crowded): 50" in str(refused.value)
    assert "resources, CloudFormation allows 500 per stack" in str(refused.value)
    assert "most from: Handle0 (1), Handle1 (1)" in str(refused.value)
    assert not any(outdir.glob("**/*.template.json"))
