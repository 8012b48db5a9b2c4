from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.job import JobPlatform
from constructs_lib.job_placement import StackPlacement, stack_id


class JobsStack(cdk.Stack):
    """One team's or domain's jobs; ``platform`` is what each ``MlJob`` is given.

    A group's ``declare`` is handed its first stack, ``Jobs-<group>``; each ``MlJob``
    declared into it lives in the stack ``placement`` records for it, ``Jobs-<group>-<k>``
    from the second on, created here as the group grows. Logical ids do not depend on the
    stack, so a job keeps them wherever it is placed.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        platform: JobPlatform,
        group: str,
        placement: StackPlacement | None = None,
        number: int = 1,
    ) -> None:
        super().__init__(
            scope,
            id,
            description=f"ML platform {platform.environment.name}: {group} jobs"
            + (f" ({number} of the group's stacks)" if number > 1 else ""),
        )
        self.platform = platform
        self.group = group
        self.placement = placement or StackPlacement()
        self.group_stacks: dict[int, JobsStack] = {1: self} if number == 1 else {}

    @classmethod
    def for_group(
        cls, scope: Construct, *, platform: JobPlatform, group: str, placement: StackPlacement
    ) -> JobsStack:
        """The group's first stack, and every further one it has had (an emptied stack
        stays, without resources, so that deploying deletes it)."""
        first = cls(scope, stack_id(group, 1), platform=platform, group=group, placement=placement)
        for number in range(2, placement.stacks_of(group) + 1):
            first.add_group_stack(number)
        return first

    def add_group_stack(self, number: int) -> JobsStack:
        stack = JobsStack(
            self.node.scope,  # type: ignore[arg-type]
            stack_id(self.group, number),
            platform=self.platform,
            group=self.group,
            placement=self.placement,
            number=number,
        )
        stack.group_stacks = self.group_stacks
        self.group_stacks[number] = stack
        return stack

    def home_of(self, job: str) -> JobsStack:
        """The stack of the group that ``job`` lives in (``PlacesJobs``)."""
        number = self.placement.stack_of(self.group, job)
        return self.group_stacks.get(number) or self.group_stacks[1].add_group_stack(number)
