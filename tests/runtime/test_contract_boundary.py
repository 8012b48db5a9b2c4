"""The CDK side imports the runtime's contract only; the contract imports no Airflow and
no botocore, so CDK validation and the DAGs read the same limits from one module."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def modules_loaded_by(*imports: str) -> list[str]:
    script = (
        "import json, sys\n"
        + "".join(f"import {name}\n" for name in imports)
        + (
            'print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("airflow", "botocore", "aiobotocore", "ml_platform"))))'
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out.splitlines()[-1]))


def test_the_cdk_app_loads_only_the_contract_of_the_runtime() -> None:
    loaded = modules_loaded_by("config", "jobs", "stacks.platform_app")
    assert loaded == ["ml_platform", "ml_platform.contract"]


def test_the_contract_imports_neither_airflow_nor_botocore() -> None:
    assert modules_loaded_by("ml_platform.contract") == ["ml_platform", "ml_platform.contract"]
