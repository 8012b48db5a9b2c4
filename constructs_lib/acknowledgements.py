"""Acknowledged cdk-nag and cfn-lint findings: on the narrowest construct, with a reason."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"
NIST = "NIST.800.53.R5"
#: The same reason serves every role whose grants CDK writes as its default policy.
ONE_ROLE_POLICY = (
    "CDK writes this role's grants as one policy attached to this role only, created and "
    "deleted with it; a customer-managed policy would add shared surface, not control."
)


def _render(value: Any) -> str:
    """Spell a resolved value the way cdk-nag prints a finding's evidence."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join":
            return str(arg[0]).join(_render(part) for part in arg[1])
    raise ValueError(f"cannot spell {value!r} as cdk-nag evidence")


def acknowledge(
    scope: IConstruct,
    rule: str,
    reason: str,
    *,
    resource: str | None = None,
    action: str | None = None,
    policy: str | None = None,
    pack: str = PACK,
) -> None:
    """Acknowledge ``<pack>-<rule>`` (AwsSolutions or NIST 800-53 r5) on ``scope`` and below.

    ``resource``/``action``/``policy`` narrow it to one finding (a wildcard resource ARN,
    a wildcard action, a managed policy ARN); tokens are spelled as cdk-nag spells them.
    """
    evidence = ""
    for kind, value in (("Resource", resource), ("Action", action), ("Policy", policy)):
        if value is not None:
            spelled = _render(cdk.Stack.of(scope).resolve(value))
            evidence = f"[{kind}::{spelled}]"
    cdk.Validations.of(scope).acknowledge(
        cdk.Acknowledgment(id=f"{pack}-{rule}{evidence}", reason=reason)
    )


def lint_ignore(resource: cdk.CfnResource, rule: str, reason: str) -> None:
    """Tell cfn-lint to skip ``rule`` on one resource, recording why."""
    resource.add_metadata("cfn-lint", {"config": {"ignore_checks": [rule]}})
    resource.add_metadata("LintAcknowledgements", {rule: reason})


def ignore_lint_in_cdk_provider(
    stack: cdk.Stack, provider_id_prefix: str, rule: str, reason: str
) -> None:
    """Tell cfn-lint to skip ``rule`` on the resources of a CDK-owned provider in ``stack``.

    These providers (BucketDeployment, S3 auto-delete, default-SG restriction) are CDK's
    code, not ours; ``reason`` says why the finding is harmless there.
    """
    for child in stack.node.children:
        if child.node.id.startswith(provider_id_prefix):
            for construct in child.node.find_all():
                if isinstance(construct, cdk.CfnResource):
                    lint_ignore(construct, rule, reason)


def skip_checkov(resources: Iterable[cdk.CfnResource], check: str, reason: str) -> None:
    """Record a checkov skip (``Metadata.checkov.skip``) with its reason on each resource."""
    for resource in resources:
        current = resource.get_metadata("checkov") or {}
        skips = [*current.get("skip", []), {"id": check, "comment": reason}]
        resource.add_metadata("checkov", {**current, "skip": skips})


def cdk_provider_functions(stack: cdk.Stack, provider_id_prefix: str) -> list[cdk.CfnResource]:
    """The Lambda functions of a CDK-owned provider singleton at ``stack``'s root."""
    return [
        construct
        for child in stack.node.children
        if child.node.id.startswith(provider_id_prefix)
        for construct in child.node.find_all()
        if isinstance(construct, cdk.CfnResource)
        and construct.cfn_resource_type == "AWS::Lambda::Function"
    ]


#: checkov's findings on CDK's deploy-time handlers, and why they do not apply.
DEPLOY_TIME_HANDLER_SKIPS = {
    "CKV_AWS_115": "CDK's deploy-time handler: CloudFormation invokes it once per resource "
    "event, so a reserved-concurrency limit would guard nothing.",
    "CKV_AWS_116": "CDK's deploy-time handler: CloudFormation waits for its answer and "
    "reports any failure itself; a dead-letter queue would stay empty.",
}
#: For CDK's CustomResourceProvider handlers, which have no VPC option.
NO_VPC_OPTION = (
    "CDK's CustomResourceProvider offers no VPC setting; the handler calls only the "
    "S3 or EC2 control-plane API during deployments."
)


def skip_checkov_in_cdk_provider(
    stack: cdk.Stack, provider_id_prefix: str, *, in_vpc: bool
) -> None:
    functions = cdk_provider_functions(stack, provider_id_prefix)
    for check, reason in DEPLOY_TIME_HANDLER_SKIPS.items():
        skip_checkov(functions, check, reason)
    if not in_vpc:
        skip_checkov(functions, "CKV_AWS_117", NO_VPC_OPTION)
