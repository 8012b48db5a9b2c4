"""CloudFormation's and IAM's limits, checked on the synthesized templates before anything
is published: what a deploy would refuse, refused at synth, naming the stack, the
resource, the figure and the limit.

Limits (defaults per account and region):
- CloudFormation quotas, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
- IAM and STS quotas, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
- CloudWatch Logs ``CreateLogGroup`` and ECS ``RegisterTaskDefinition`` name rules.

Policy sizes are counted as IAM counts them (characters, whitespace outside strings not
counted) with each deploy-time value replaced by an upper estimate of its length
(``TOKEN_LENGTHS``), since the real value is known only to CloudFormation.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_platform.contract import DeclarationError

MAX_RESOURCES = 500
MAX_TEMPLATE_BYTES = 1_048_576  # 1 MB, the largest template CloudFormation takes (via S3)
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200
MAX_MAPPINGS = 200
MAX_MANAGED_POLICIES_PER_ROLE = 10  # default quota; 20 at most after an increase
MAX_INLINE_POLICY_CHARS_PER_ROLE = 10_240  # all inline policies of a role together
MAX_MANAGED_POLICY_CHARS = 6_144
MAX_ROLE_NAME = 64
MAX_ROLE_PATH = 512
MAX_LOG_GROUP_NAME = 512
MAX_FAMILY = 255

#: Upper estimates of deploy-time values, for policy sizes.
PSEUDO_LENGTHS = {
    "AWS::AccountId": 12,
    "AWS::Region": 14,  # ap-southeast-2
    "AWS::Partition": 10,  # aws-us-gov
    "AWS::URLSuffix": 16,  # amazonaws.com.cn
    "AWS::StackName": 128,
    "AWS::StackId": 160,
}
TOKEN_LENGTHS = {"Ref": 64, "Fn::GetAtt": 128, "Fn::ImportValue": 128, "other": 128}


class QuotaExceeded(DeclarationError):
    """Templates that CloudFormation or IAM would refuse at deploy."""


@dataclass(frozen=True)
class StackTemplate:
    display_name: str  # dev/Jobs-pricing
    stack_name: str  # dev-Jobs-pricing
    path: Path
    metadata: dict[str, Any]  # the artifact's metadata: construct path -> entries

    def __str__(self) -> str:
        return f"stack {self.display_name} ({self.stack_name})"

    def construct_paths(self) -> dict[str, str]:
        """Each resource's construct path below its stack, by logical id."""
        return {
            entry["data"]: path.split("/", 3)[-1]
            for path, entries in self.metadata.items()
            for entry in entries
            if entry["type"] == "aws:cdk:logicalId" and path.count("/") >= 3
        }


def stack_templates(assembly: Path) -> Iterator[StackTemplate]:
    """Every stack of a cloud assembly and its nested (stage) assemblies."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties", {})
        if artifact["type"] == "aws:cloudformation:stack":
            metadata = artifact.get("metadata", {})
            if "additionalMetadataFile" in artifact:
                metadata = json.loads((assembly / artifact["additionalMetadataFile"]).read_text())
            yield StackTemplate(
                artifact.get("displayName", properties["templateFile"]),
                properties.get("stackName", ""),
                assembly / properties["templateFile"],
                metadata,
            )
        elif artifact["type"] == "cdk:cloud-assembly":
            yield from stack_templates(assembly / properties["directoryName"])


def check_assembly(assembly: Path) -> None:
    """Raise ``QuotaExceeded`` with one line per limit crossed, over all stacks."""
    problems = [
        f"{stack}: {problem}"
        for stack in stack_templates(assembly)
        for problem in template_problems(
            json.loads(stack.path.read_text()),
            size=stack.path.stat().st_size,
            paths=stack.construct_paths(),
        )
    ]
    if problems:
        raise QuotaExceeded("templates that a deploy would refuse:\n  - " + "\n  - ".join(problems))


def template_problems(
    template: dict[str, Any], *, size: int, paths: Mapping[str, str] | None = None
) -> list[str]:
    """:param paths: construct path below the stack by logical id ("Model0001/Logs/...")."""
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    out = []
    if len(resources) > MAX_RESOURCES:
        out.append(
            f"{len(resources)} resources, CloudFormation allows {MAX_RESOURCES} per stack "
            f"(most from: {_largest_owners(resources, paths or {})})"
        )
    if size > MAX_TEMPLATE_BYTES:
        out.append(
            f"template of {size:,} bytes, CloudFormation allows {MAX_TEMPLATE_BYTES:,} "
            f"(largest resources: {_largest_resources(resources)})"
        )
    for section, limit in (
        ("Outputs", MAX_OUTPUTS),
        ("Parameters", MAX_PARAMETERS),
        ("Mappings", MAX_MAPPINGS),
    ):
        count = len(template.get(section, {}))
        if count > limit:
            out.append(f"{count} {section.lower()}, CloudFormation allows {limit} per stack")
    out += _iam_problems(resources)
    out += _name_problems(resources)
    return out


def _largest_owners(resources: dict[str, dict[str, Any]], paths: Mapping[str, str]) -> str:
    """The constructs directly under the stack (jobs, ...) with the most resources."""
    owners = Counter(paths.get(i, i).split("/")[0] for i in resources)
    return ", ".join(f"{name} ({count})" for name, count in owners.most_common(3))


def _largest_resources(resources: dict[str, dict[str, Any]]) -> str:
    sizes = sorted(((len(json.dumps(r)), i) for i, r in resources.items()), reverse=True)
    return ", ".join(f"{i} ({n:,} bytes)" for n, i in sizes[:3])


# -- IAM ----------------------------------------------------------------------------------


def estimated_chars(value: Any) -> int:
    """A policy document's length as IAM counts it, deploy-time values estimated high."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        # Each deploy-time value becomes a JSON string: its characters and two quotes.
        if key == "Ref":
            return PSEUDO_LENGTHS.get(argument, TOKEN_LENGTHS["Ref"]) + 2
        if key == "Fn::Join":
            separator, parts = argument
            joined = sum(_joined_chars(p) for p in parts) + len(separator) * (len(parts) - 1)
            return joined + 2
        if key.startswith("Fn::"):
            return TOKEN_LENGTHS.get(key, TOKEN_LENGTHS["other"]) + 2  # as a JSON string
    if isinstance(value, dict):
        items = [len(json.dumps(k)) + 1 + estimated_chars(v) for k, v in value.items()]
        return 2 + sum(items) + max(len(items) - 1, 0)
    if isinstance(value, list):
        return 2 + sum(estimated_chars(v) for v in value) + max(len(value) - 1, 0)
    return len(json.dumps(value))


def _joined_chars(part: Any) -> int:
    """A part of an Fn::Join: a string contributes its characters, without quotes."""
    return len(part) if isinstance(part, str) else estimated_chars(part) - 2


def _role_refs(value: Any) -> list[str]:
    return [r["Ref"] for r in value or [] if isinstance(r, dict) and "Ref" in r]


def _iam_problems(resources: dict[str, dict[str, Any]]) -> list[str]:
    roles = {i: r for i, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    inline = Counter[str]()
    managed = Counter[str]()
    out = []
    for logical_id, definition in roles.items():
        properties = definition.get("Properties", {})
        managed[logical_id] += len(properties.get("ManagedPolicyArns", []))
        for policy in properties.get("Policies", []):
            inline[logical_id] += estimated_chars(policy["PolicyDocument"])
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            for role in _role_refs(properties.get("Roles")):
                inline[role] += estimated_chars(properties["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            for role in _role_refs(properties.get("Roles")):
                managed[role] += 1
            chars = estimated_chars(properties["PolicyDocument"])
            if chars > MAX_MANAGED_POLICY_CHARS:
                out.append(
                    f"managed policy {logical_id}: about {chars:,} characters, IAM allows "
                    f"{MAX_MANAGED_POLICY_CHARS:,} per managed policy"
                )
    for role in roles:
        if managed[role] > MAX_MANAGED_POLICIES_PER_ROLE:
            out.append(
                f"role {role}: {managed[role]} managed policies, IAM allows "
                f"{MAX_MANAGED_POLICIES_PER_ROLE} per role (20 at most with a quota increase)"
            )
        if inline[role] > MAX_INLINE_POLICY_CHARS_PER_ROLE:
            out.append(
                f"role {role}: inline policies of about {inline[role]:,} characters, IAM "
                f"allows {MAX_INLINE_POLICY_CHARS_PER_ROLE:,} per role, all together"
            )
    return out


# -- names --------------------------------------------------------------------------------

#: (resource type, property, limit, what it is)
NAME_LIMITS = (
    ("AWS::IAM::Role", "RoleName", MAX_ROLE_NAME, "role name"),
    ("AWS::IAM::Role", "Path", MAX_ROLE_PATH, "role path"),
    ("AWS::Logs::LogGroup", "LogGroupName", MAX_LOG_GROUP_NAME, "log group name"),
    ("AWS::ECS::TaskDefinition", "Family", MAX_FAMILY, "task definition family"),
)


def _name_problems(resources: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for logical_id, resource in resources.items():
        for kind, field, limit, what in NAME_LIMITS:
            value = resource.get("Properties", {}).get(field)
            if resource["Type"] == kind and isinstance(value, str) and len(value) > limit:
                out.append(
                    f"{logical_id}: {what} {value[:40]!r}... has {len(value)} characters, "
                    f"AWS allows {limit}"
                )
    return out
