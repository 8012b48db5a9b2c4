from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Synthesized

DAGS = REPO / "dags"


@pytest.fixture(scope="session", autouse=True)
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Parsing needs an AIRFLOW_HOME but no database, no connections, no network."""
    home = tmp_path_factory.mktemp("airflow-home")
    saved = dict(os.environ)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def dev_manifest(synthesized: Synthesized) -> Path:
    return synthesized.outdir / "manifests" / "dev.json"


@pytest.fixture(scope="session")
def manifest_model(dev_manifest: Path):  # type: ignore[no-untyped-def]
    from ml_platform.contract import load_manifest

    return load_manifest(dev_manifest)
