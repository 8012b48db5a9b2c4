"""What a data scientist hands ``MlJob`` besides plain values: its image and partitions."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3

from constructs_lib.image_build import ImageBuild
from ml_platform.contract import PARTITION_MAX_CHARS

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


@functools.cache
def _architecture_refs() -> dict[str, str]:
    return {getattr(ecs.CpuArchitecture, n).__jsii_ref__.ref: n for n in ("X86_64", "ARM64")}


def architecture_name(architecture: ecs.CpuArchitecture) -> str | None:
    """ "X86_64" or "ARM64" (None for anything else). jsii hands out a new Python object on
    each access to ``ecs.CpuArchitecture.ARM64``, so compare the JavaScript objects."""
    ref = getattr(getattr(architecture, "__jsii_ref__", None), "ref", None)
    return _architecture_refs().get(ref) if ref is not None else None


def unresolved(value: Any) -> bool:
    """A deploy-time token: checks skip what synth cannot know. (Only a string with a token
    marker or a float can be one; asking jsii about every value is slow.)"""
    if isinstance(value, str):
        return "{Token[" in value and cdk.Token.is_unresolved(value)
    return isinstance(value, float) and cdk.Token.is_unresolved(value)


@functools.lru_cache(maxsize=4096)
def whole_seconds(duration: cdk.Duration) -> int:
    """``duration.to_seconds()``, asked of jsii once per Duration."""
    return int(duration.to_seconds())


class JobImage:
    """Where a job's container image comes from.

    Use :meth:`from_model` for a model folder under ``models/`` (built with the shared
    ``models/Dockerfile``), :meth:`from_directory` for a self-contained folder with its own
    Dockerfile, both built as assets at deploy time; or :meth:`from_ecr` for an image
    already in ECR (tag or digest).
    """

    def __init__(
        self,
        *,
        reference: str,
        build: ImageBuild | None = None,
        repository: ecr.IRepository | None = None,
        tag: str | None = None,
        digest: str | None = None,
    ) -> None:
        #: For people (the manifest, the DAG docs): a model, a folder or a registry image.
        self.reference = reference
        #: How the image is built from this repository (None for a registry image).
        self.build = build
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def from_model(cls, name: str) -> JobImage:
        """The model in ``models/<name>/`` (a package ``<name>``), with the shared contract
        package, built by ``models/Dockerfile``; the working directory is the repository."""
        build = ImageBuild.model(name)
        return cls(reference=build.reference, build=build)

    @classmethod
    def from_directory(cls, directory: str | Path) -> JobImage:
        """A folder holding a Dockerfile; relative paths resolve from the working directory."""
        build = ImageBuild.directory(Path(directory))
        return cls(reference=build.reference, build=build)

    @classmethod
    def from_ecr(
        cls, repository: ecr.IRepository, *, tag: str | None = None, digest: str | None = None
    ) -> JobImage:
        """An image in ECR, pinned by ``tag`` or (better, immutable) ``digest``."""
        ref = digest or tag or ""
        sep = "@" if digest else ":"
        return cls(
            reference=f"{repository.repository_uri}{sep}{ref}",
            repository=repository,
            tag=tag,
            digest=digest,
        )

    def problems(self) -> list[str]:
        if self.build is not None:
            return self.build.problems()
        out = []
        if (self.tag is None) == (self.digest is None):
            out.append("field 'image': give exactly one of tag or digest for an ECR image")
        if (
            self.digest is not None
            and not unresolved(self.digest)
            and not _DIGEST.match(self.digest)
        ):
            out.append(f"field 'image': digest {self.digest!r} must be 'sha256:' + 64 hex")
        if self.tag is not None and not unresolved(self.tag) and not _TAG.match(self.tag):
            out.append(f"field 'image': tag {self.tag!r} is not a valid image tag")
        return out

    def bind(self, architecture: ecs.CpuArchitecture) -> ecs.ContainerImage:
        if self.build is not None:
            platform = (
                ecr_assets.Platform.LINUX_ARM64
                if architecture_name(architecture) == "ARM64"
                else ecr_assets.Platform.LINUX_AMD64
            )
            # Absolute: the jsii runtime resolves relative paths from its own directory.
            return ecs.ContainerImage.from_asset(
                str(self.build.context.resolve()),
                file=self.build.dockerfile,
                build_args=self.build.build_args or None,
                exclude=list(self.build.exclude) or None,
                ignore_mode=cdk.IgnoreMode.DOCKER if self.build.exclude else None,
                platform=platform,
            )
        assert self.repository is not None
        return ecs.ContainerImage.from_ecr_repository(self.repository, self.digest or self.tag)


@dataclass(frozen=True)
class Partitions:
    """What a job fans out over: a static list, or a JSON list in S3 read at run time."""

    values: tuple[str, ...] = ()
    bucket: s3.IBucket | None = None
    key: str | None = None

    @classmethod
    def static(cls, values: Sequence[str]) -> Partitions:
        return cls(values=tuple(values))

    @classmethod
    def from_s3(cls, bucket: s3.IBucket, key: str) -> Partitions:
        """The object must hold a JSON list of strings; the orchestrator may read only it."""
        return cls(bucket=bucket, key=key)

    def problems(self) -> list[str]:
        if self.bucket is not None:
            if not self.key or (not unresolved(self.key) and self.key.startswith("/")):
                return [
                    f"field 'partitions': S3 key {self.key!r} must be a non-empty key "
                    "without a leading '/'"
                ]
            return []
        out = []
        if not self.values:
            out.append("field 'partitions': the static list is empty; give at least one")
        longest = PARTITION_MAX_CHARS
        bad = [v for v in self.values if not isinstance(v, str) or not v or len(v) > longest]
        if bad:
            out.append(
                f"field 'partitions': values must be 1-{longest} character strings: {bad[:3]}"
            )
        dupes = sorted({v for v in self.values if self.values.count(v) > 1})
        if dupes:
            out.append(f"field 'partitions': duplicate values {dupes[:5]}")
        return out

    def manifest(self) -> dict[str, Any]:
        if self.bucket is not None:
            return {"kind": "s3", "bucket": self.bucket.bucket_name, "key": self.key}
        return {"kind": "static", "values": list(self.values)}
