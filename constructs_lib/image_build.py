"""How a job's image is built from this repository: one description that CDK's asset
(``JobImage.bind``) and the local harness (``simulator/containers.py``) both build from,
so what runs here is what ``cdk deploy`` builds. No CDK import: the simulator uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Model folders live here; ``models/Dockerfile`` builds each with ``MODEL=<folder>``.
MODELS_DIR = Path("models")
#: What every model image's build context holds besides the model's own folder.
SHARED = ("Dockerfile", "requirements.txt", "model_contract", ".dockerignore")
#: Never part of an image, nor of its asset hash.
CACHES = ("**/__pycache__", "**/*.pyc", "**/.mypy_cache", "**/.ruff_cache", "**/.pytest_cache")


@dataclass(frozen=True)
class ImageBuild:
    """A build context, the Dockerfile in it, its build arguments, and the context's
    files the build may see (Docker ignore patterns; they also decide the asset hash)."""

    context: Path
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    #: How the job manifest names the image ("model:<folder>" or "asset:<folder>").
    reference: str = ""

    @classmethod
    def model(cls, name: str, models_dir: Path = MODELS_DIR) -> ImageBuild:
        """A model folder: ``models/Dockerfile`` (or the folder's own Dockerfile, for a
        model that needs more than the shared one) over the shared package and the folder."""
        own = models_dir / name / "Dockerfile"
        return cls(
            context=models_dir,
            dockerfile=f"{name}/Dockerfile" if own.is_file() else "Dockerfile",
            build_args={"MODEL": name},
            # Only the shared files and this model, so another model's change leaves this
            # image's asset hash alone; then no caches (CDK puts models/.dockerignore's
            # patterns before these, where the negations would undo them).
            exclude=("*", *(f"!{shared}" for shared in SHARED), f"!{name}", *CACHES),
            reference=f"model:{name}",
        )

    @classmethod
    def directory(cls, directory: Path) -> ImageBuild:
        """A self-contained folder with its own Dockerfile: the folder is the context."""
        return cls(context=directory, reference=f"asset:{directory.as_posix()}")

    def problems(self) -> list[str]:
        """What would fail the build before it starts."""
        name = self.build_args.get("MODEL")
        if name is not None and not (self.context / name / name / "__init__.py").is_file():
            return [
                f"field 'image': no model package {(self.context / name / name).as_posix()!r} "
                f"(a model folder holds a package of its own name; see models/README.md)"
            ]
        if not (self.context / self.dockerfile).is_file():
            return [f"field 'image': no Dockerfile in {self.context.as_posix()!r}"]
        return []


def model_folders(models_dir: Path) -> list[str]:
    """Every model under ``models_dir``: a folder holding a package of its own name."""
    return sorted(
        path.name
        for path in models_dir.iterdir()
        if path.is_dir() and (path / path.name / "__init__.py").is_file()
    )
