"""The self-hosted Airflow image's build context, staged from the repository.

One folder holds everything ``runtime/image/Dockerfile`` copies: the Dockerfile, the
entrypoint and ``airflow.cfg``; the MWAA parity project's ``pyproject.toml`` and
``uv.lock`` for the Airflow version (the lock the local harness runs, so the Airflow that
is tested is the Airflow that is deployed); the runtime package ``plugins/ml_platform``;
the DAG file and the manifest. CDK builds it as an image asset
(``ContainerImage.from_asset``), and the local harness builds the same folder
(``simulator/selfhosted.py``).

Deterministic: the same inputs give the same bytes, file names and modes, so the asset
hash (and the image) change only when the code, the lock or the manifest do. No CDK
import: the simulator stages it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.airflow_versions import MWAA_RUNTIMES
from constructs_lib.plugins_bundle import plugin_files

REPO = Path(__file__).resolve().parents[1]
#: The image's own files, copied as they are.
IMAGE_SOURCE = REPO / "runtime" / "image"
IMAGE_FILES = ("Dockerfile", "entrypoint.py", "airflow.cfg")
#: Copied from the version's parity project (config/airflow_versions.py).
LOCK_FILES = ("pyproject.toml", "uv.lock")
PLUGINS = REPO / "plugins"
DAG_FILE = REPO / "dags" / "ml_platform_dags.py"
MANIFEST_NAME = "manifest.json"
#: Fixed modification time of every staged file (1 Jan 2000), so that nothing in the
#: folder depends on when it was staged.
_MTIME = 946684800


class UnknownAirflowVersion(ValueError):
    """No MWAA parity runtime (hence no lock) for this Airflow version."""


def image_files(manifest: Mapping[str, Any], *, version: str) -> dict[str, bytes]:
    """The build context's files: relative POSIX path -> bytes, in a fixed order."""
    runtime = MWAA_RUNTIMES.get(version)
    if runtime is None:
        raise UnknownAirflowVersion(
            f"no Airflow runtime {version!r} to build the image from "
            f"(config/airflow_versions.py); known: {sorted(MWAA_RUNTIMES)}"
        )
    files: dict[str, bytes] = {}
    for name in IMAGE_FILES:
        files[name] = (IMAGE_SOURCE / name).read_bytes()
    for name in LOCK_FILES:
        files[name] = (REPO / runtime.project / name).read_bytes()
    for relative in plugin_files(PLUGINS):
        files[f"plugins/{relative.as_posix()}"] = (PLUGINS / relative).read_bytes()
    files[f"dags/{DAG_FILE.name}"] = DAG_FILE.read_bytes()
    files[f"dags/{MANIFEST_NAME}"] = json.dumps(manifest, sort_keys=True, indent=2).encode()
    return dict(sorted(files.items()))


def stage_airflow_image(manifest: Mapping[str, Any], *, version: str) -> Path:
    """The build context for ``manifest`` and Airflow ``version``: a folder named by its
    content's hash, staged once and reused (never modified once it exists)."""
    files = image_files(manifest, version=version)
    digest = hashlib.sha256()
    for relative, content in files.items():
        digest.update(relative.encode() + b"\0" + hashlib.sha256(content).digest())
    target = Path(tempfile.gettempdir()) / f"mlp-airflow-image-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    for relative, content in files.items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o644)
        os.utime(path, (_MTIME, _MTIME))
    for folder in sorted({p.parent for p in staging.rglob("*") if p.is_file()}):
        while folder != staging.parent:
            folder.chmod(0o755)
            os.utime(folder, (_MTIME, _MTIME))
            folder = folder.parent
    try:
        staging.rename(target)
    except OSError:  # staged meanwhile by another process: the same bytes
        shutil.rmtree(staging, ignore_errors=True)
    return target
