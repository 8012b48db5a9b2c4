"""Acknowledging cdk-nag findings: always on the narrowest construct, always with a reason."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"


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
            return arg[0].join(_render(part) for part in arg[1])
    raise ValueError(f"cannot spell {value!r} as cdk-nag evidence")


def acknowledge(
    scope: IConstruct,
    rule: str,
    reason: str,
    *,
    resource: str | None = None,
    action: str | None = None,
    policy: str | None = None,
) -> None:
    """Acknowledge ``AwsSolutions-<rule>`` on ``scope`` and its children.

    ``resource``/``action``/``policy`` narrow it to one finding (a wildcard resource ARN,
    a wildcard action, a managed policy ARN); tokens are spelled as cdk-nag spells them.
    """
    evidence = ""
    for kind, value in (("Resource", resource), ("Action", action), ("Policy", policy)):
        if value is not None:
            spelled = _render(cdk.Stack.of(scope).resolve(value))
            evidence = f"[{kind}::{spelled}]"
    cdk.Validations.of(scope).acknowledge(
        cdk.Acknowledgment(id=f"{PACK}-{rule}{evidence}", reason=reason)
    )
