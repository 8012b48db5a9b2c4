"""The self-hosted Airflow image's build context (constructs_lib/airflow_image.py): what
it holds, that it is the same bytes for the same inputs, and that it refuses a version it
has no lock for. The image itself is built and run by tests/e2e/test_self_hosted.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from config.airflow_versions import MWAA_RUNTIMES
from constructs_lib.airflow_image import (
    UnknownAirflowVersion,
    image_files,
    stage_airflow_image,
)

REPO = Path(__file__).resolve().parents[2]
MANIFEST = {"version": 1, "jobs": [{"name": "b"}, {"name": "a"}], "cluster": "mlp-test"}


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_context_holds_the_image_files_the_lock_the_runtime_and_the_dags() -> None:
    folder = stage_airflow_image(MANIFEST, version="3.3.1")
    files = tree(folder)
    runtime = REPO / MWAA_RUNTIMES["3.3.1"].project
    # One lock for the harness and the image.
    assert files["uv.lock"][0] == (runtime / "uv.lock").read_bytes()
    assert files["pyproject.toml"][0] == (runtime / "pyproject.toml").read_bytes()
    for name in ("Dockerfile", "entrypoint.py", "airflow.cfg"):
        assert files[name][0] == (REPO / "runtime" / "image" / name).read_bytes()
    assert files["dags/ml_platform_dags.py"][0] == (REPO / "dags/ml_platform_dags.py").read_bytes()
    assert json.loads(files["dags/manifest.json"][0]) == MANIFEST
    shipped = {name for name in files if name.startswith("plugins/")}
    assert "plugins/ml_platform/factory.py" in shipped
    assert "plugins/ml_platform/fargate.py" in shipped
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in files)
    assert {mode for _, mode in files.values()} == {0o644}


def test_the_same_inputs_stage_the_same_bytes(tmp_path: Path) -> None:
    first = stage_airflow_image(MANIFEST, version="3.3.1")
    # The same manifest with its keys in another order is the same manifest.
    reordered = dict(reversed(list(MANIFEST.items())))
    assert stage_airflow_image(reordered, version="3.3.1") == first
    # Staged afresh (the cached folder gone), the bytes and the folder name are the same.
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    shutil.rmtree(first)
    again = stage_airflow_image(MANIFEST, version="3.3.1")
    assert again == first
    assert tree(again) == tree(copy)
    assert image_files(MANIFEST, version="3.3.1") == image_files(reordered, version="3.3.1")


def test_a_changed_manifest_is_another_context() -> None:
    other = {**MANIFEST, "cluster": "mlp-other"}
    assert stage_airflow_image(other, version="3.3.1") != stage_airflow_image(
        MANIFEST, version="3.3.1"
    )


def test_an_unknown_airflow_version_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownAirflowVersion, match=r"'2\.9\.9'.*known: \['3\.3\.1'\]"):
        stage_airflow_image(MANIFEST, version="2.9.9")
