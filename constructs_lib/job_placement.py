"""Which stack of its group each job lives in, recorded so that it never changes.

CloudFormation replaces a resource that moves to another stack (a new log group, new
roles, a new task definition family revision), so a job's stack is decided once, when the
job first appears, and kept in ``jobs/stacks.json`` (committed, like ``cdk.context.json``).
A new job goes to the first of its group's stacks with room; a removed job frees its
place. The record is shared by all environments, so a job has the same stack in each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from constructs import Construct

from ml_platform.contract import DeclarationError

#: Jobs per stack: 5 resources each (log group, two roles, a policy, a task definition),
#: 6 with a grant to the model, and 2-3 alarms: 40 x 9 = 360 leaves room under
#: CloudFormation's 500 for a group's own resources (buckets, keys). The quota check
#: after synth is the backstop.
JOBS_PER_STACK = 40
FILE_HEADER = (
    "Written by make synth: the stack of each job, by group (1 = Jobs-<group>, "
    "k = Jobs-<group>-<k>). Commit it; a job never moves once placed."
)


def stack_id(group: str, number: int) -> str:
    """The construct id (and stack name suffix) of a group's stack number ``number``."""
    return f"Jobs-{group}" if number == 1 else f"Jobs-{group}-{number}"


class PlacementError(DeclarationError):
    """``jobs/stacks.json`` that cannot be read as a placement."""


@runtime_checkable
class PlacesJobs(Protocol):
    """A scope that decides which stack an ``MlJob`` declared into it lives in."""

    def home_of(self, job: str) -> Construct: ...


@dataclass
class GroupPlacement:
    #: How many stacks the group has had; a stack left empty stays, so that its deploy
    #: deletes it (the CDK CLI deletes a deployed stack that has no resources).
    stacks: int = 1
    jobs: dict[str, int] = field(default_factory=dict)


@dataclass
class StackPlacement:
    """{group: its stacks and {job: stack number}}; read once, written back after a synth."""

    groups: dict[str, GroupPlacement] = field(default_factory=dict)
    jobs_per_stack: int = JOBS_PER_STACK
    #: Jobs declared in this synth (any environment), by group: what a write keeps.
    declared: dict[str, set[str]] = field(default_factory=dict)
    #: Jobs placed by this synth: (group, job, stack number).
    placed: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, *, jobs_per_stack: int = JOBS_PER_STACK) -> StackPlacement:
        if not path.is_file():
            return cls(jobs_per_stack=jobs_per_stack)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            groups = {
                name: GroupPlacement(stacks=int(g["stacks"]), jobs=dict(g["jobs"]))
                for name, g in raw["groups"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise PlacementError(
                f"{path}: not a job placement ({error!r}); restore it from git rather than "
                "deleting it: a job placed in another stack is replaced on deploy"
            ) from None
        for name, group in groups.items():
            bad = {j: s for j, s in group.jobs.items() if not 1 <= s <= group.stacks}
            if bad:
                raise PlacementError(
                    f"{path}: group {name!r}: stack numbers must be 1-{group.stacks}: {bad}"
                )
        return cls(groups=groups, jobs_per_stack=jobs_per_stack)

    def stack_of(self, group: str, job: str) -> int:
        """The job's stack number in its group: recorded, or the first with room."""
        self.declared.setdefault(group, set()).add(job)
        placed = self.groups.setdefault(group, GroupPlacement())
        if job not in placed.jobs:
            load = [0] * (placed.stacks + 1)
            for number in placed.jobs.values():
                load[number] += 1
            free = [n for n in range(1, placed.stacks + 1) if load[n] < self.jobs_per_stack]
            if not free:
                placed.stacks += 1
                free = [placed.stacks]
            placed.jobs[job] = free[0]
            self.placed.append((group, job, free[0]))
        return placed.jobs[job]

    def stacks_of(self, group: str) -> int:
        return self.groups.get(group, GroupPlacement()).stacks

    def to_json(self) -> dict[str, Any]:
        """What to record: the groups and jobs of this synth (removed jobs free their place)."""
        return {
            "comment": FILE_HEADER,
            "groups": {
                name: {
                    "stacks": group.stacks,
                    "jobs": dict(
                        sorted((j, n) for j, n in group.jobs.items() if j in self.declared[name])
                    ),
                }
                for name, group in sorted(self.groups.items())
                if name in self.declared
            },
        }

    def is_recorded_in(self, path: Path) -> bool:
        return path.is_file() and json.loads(path.read_text(encoding="utf-8")) == self.to_json()

    def save(self, path: Path) -> bool:
        """Write the record if it changed; True when it did."""
        if self.is_recorded_in(path):
            return False
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return True
