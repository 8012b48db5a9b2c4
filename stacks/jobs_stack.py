from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.job import JobPlatform


class JobsStack(cdk.Stack):
    """One team's or domain's jobs; ``platform`` is what each ``MlJob`` is given."""

    def __init__(self, scope: Construct, id: str, *, platform: JobPlatform, group: str) -> None:
        super().__init__(
            scope, id, description=f"ML platform {platform.environment.name}: {group} jobs"
        )
        self.platform = platform
