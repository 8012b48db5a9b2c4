"""Puts each model folder on sys.path, as the image's WORKDIR does, and isolates the
tests from any contract variables set in the calling shell."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from constructs_lib.image_build import model_folders

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
#: Every model folder (a folder holding a package of its own name): a new one is tested too.
MODEL_NAMES = tuple(model_folders(MODELS_DIR))
CONTRACT_ENV = (
    "ML_PARTITIONS",
    "ML_OUTPUT_URI",
    "ML_LOGICAL_DATE",
    "FORECAST_HORIZON_HOURS",
    "PRICING_MIN_RATIO",
    "PRICING_MAX_RATIO",
    "ANOMALY_WINDOW",
    "ANOMALY_THRESHOLD",
)

# The shared contract package, and each model package, as the image's WORKDIR holds them.
for _path in (str(MODELS_DIR), *(str(MODELS_DIR / name) for name in MODEL_NAMES)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

RunModule = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _clean_contract_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in CONTRACT_ENV:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def run_module(tmp_path: Path) -> RunModule:
    """Runs ``python -m <model>`` the way the image's ENTRYPOINT does."""

    def run(
        model: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        child_env = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV}
        child_env.update(
            PYTHONPATH=os.pathsep.join((str(MODELS_DIR / model), str(MODELS_DIR))),
            PYTHONDONTWRITEBYTECODE="1",
        )
        child_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", model, *args],
            cwd=tmp_path,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run
