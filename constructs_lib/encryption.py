"""A customer-managed KMS key that CloudWatch Logs may use for the owner's log groups."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class LogEncryptionKey(Construct):
    """A rotating KMS key; CloudWatch Logs may use it only for log groups under a prefix.

    :param log_group_prefix: log-group name prefix the key serves (e.g. ``/mlp-dev/jobs/``).
    :param removal_policy: what happens to the key when the stack is deleted.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        description: str,
        log_group_prefix: str,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=cdk.Duration.days(7)
            if removal_policy == cdk.RemovalPolicy.DESTROY
            else cdk.Duration.days(30),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForPrefix",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{log_group_prefix}*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
