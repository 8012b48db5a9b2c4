"""The harness's Airflow is MWAA's: the parity runtime pins MWAA's image, holds nothing of
the repository, and the runtime package imports on it as on MWAA, only through plugins."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from config import ENVIRONMENTS
from config.airflow_versions import MWAA_RUNTIMES, MwaaRuntime
from constructs_lib.plugins_bundle import build_plugins_zip
from simulator.airflow_local import LocalAirflow, install_mwaa_layout, parity_runtime
from tests.conftest import REPO

PLUGINS = REPO / "plugins"
PACKAGE = PLUGINS / "ml_platform"
RUNTIMES = sorted(MWAA_RUNTIMES.items())
TRIGGER = "ml_platform.fargate.FargateJobTrigger"
#: Required by packages of MWAA's image (so the image has them), but absent from the bill
#: of materials as published: apache-airflow-core and python-daemon need lockfile,
#: flask-limiter ordered-set, prompt-toolkit wcwidth, redshift-connector setuptools.
UNLISTED_REQUIREMENTS = {"lockfile", "ordered-set", "wcwidth", "setuptools"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project(runtime: MwaaRuntime) -> dict[str, Any]:
    return tomllib.loads((REPO / runtime.project / "pyproject.toml").read_text())


def bill_of_materials(runtime: MwaaRuntime) -> dict[str, str]:
    """MWAA's image: every package and its version (the parity project's constraints)."""
    pins = project(runtime)["tool"]["uv"]["constraint-dependencies"]
    return {normalized(pin.split("==")[0]): pin.split("==")[1] for pin in pins}


def locked(runtime: MwaaRuntime) -> tuple[dict[str, str], str]:
    lock = tomllib.loads((REPO / runtime.project / "uv.lock").read_text())
    return {normalized(p["name"]): p["version"] for p in lock["package"]}, lock["requires-python"]


@pytest.mark.parametrize(("version", "runtime"), RUNTIMES)
def test_the_parity_lock_matches_the_version_table(version: str, runtime: MwaaRuntime) -> None:
    packages, requires_python = locked(runtime)
    for name, pinned in runtime.packages().items():
        assert packages.get(normalized(name)) == pinned, f"{name} drifted from the table"
    assert requires_python == f"=={runtime.python_minor}.*"
    assert runtime.airflow == version


@pytest.mark.parametrize(("version", "runtime"), RUNTIMES)
def test_every_locked_package_is_at_the_version_mwaa_ships(
    version: str, runtime: MwaaRuntime
) -> None:
    bom = bill_of_materials(runtime)
    packages, _ = locked(runtime)
    packages.pop(normalized(project(runtime)["project"]["name"]))
    differ = {n: v for n, v in packages.items() if bom.get(n) != v}
    assert {n: v for n, v in differ.items() if n not in UNLISTED_REQUIREMENTS} == {}
    # The table's row is MWAA's own bill of materials.
    for name, pinned in runtime.packages().items():
        assert bom[normalized(name)] == pinned


def test_config_uses_a_version_the_table_knows() -> None:
    for env in ENVIRONMENTS.values():
        assert env.airflow.version in MWAA_RUNTIMES


@pytest.fixture(scope="module")
def runtime() -> MwaaRuntime:
    return parity_runtime(ENVIRONMENTS["dev"].airflow.version)


def test_the_installed_parity_venv_is_the_locked_one(runtime: MwaaRuntime) -> None:
    python = runtime.venv / "bin" / "python"
    script = (
        "import json, sys, importlib.metadata as m\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({'python': '%d.%d' % sys.version_info[:2],"
        " 'packages': {n: m.version(n) for n in names}}))"
    )
    out = subprocess.run(
        [str(python), "-c", script, json.dumps(list(runtime.packages()))],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout)
    assert found["python"] == runtime.python_minor
    assert found["packages"] == runtime.packages()


def test_nothing_of_the_repository_is_on_the_parity_path(runtime: MwaaRuntime) -> None:
    site = next((runtime.venv / "lib").glob("python3.*/site-packages"))
    for pth in site.glob("*.pth"):
        assert str(REPO) not in pth.read_text(), f"{pth.name} puts the repository on sys.path"
    assert not list(site.glob("ml_platform*")), "the runtime package is installed in the venv"


@pytest.fixture
def airflow(runtime: MwaaRuntime, tmp_path: Path) -> LocalAirflow:
    """A local Airflow's environment and layout (not started): what every component sees."""
    return LocalAirflow(
        tmp_path / "home",
        {"max_map_length": 1},
        dags=REPO / "dags",
        plugins_zip=build_plugins_zip(PLUGINS),
        environment_name="parity",
        airflow_version=ENVIRONMENTS["dev"].airflow.version,
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
    )


IMPORT_AS_THE_TRIGGERER_DOES = f"""
import inspect, airflow.settings
from airflow._shared.module_loading import import_string  # the triggerer's own
try:
    found = import_string({TRIGGER!r})
except ImportError as error:
    print("ImportError:", error)
else:
    print("imported from", inspect.getfile(found))
"""


def test_the_trigger_imports_from_the_plugins_folder(airflow: LocalAirflow) -> None:
    install_mwaa_layout(airflow.home, dags=airflow.dags_source, plugins_zip=airflow.plugins_zip)
    result = airflow.run_python("-c", IMPORT_AS_THE_TRIGGERER_DOES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"imported from {airflow.home / 'plugins' / 'ml_platform' / 'fargate.py'}"
    )


def test_a_package_in_the_dags_folder_is_not_importable_there(airflow: LocalAirflow) -> None:
    """The layout this platform had before: the package beside the DAG file. Airflow 3's
    triggerer does not put the DAGs folder on sys.path, so the trigger cannot load."""
    home = airflow.home
    (home / "plugins").mkdir(parents=True)
    (home / "python").mkdir()
    shutil.copytree(REPO / "dags", home / "dags")
    shutil.copytree(PACKAGE, home / "dags" / "ml_platform")
    result = airflow.run_python("-c", IMPORT_AS_THE_TRIGGERER_DOES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ImportError: No module named 'ml_platform'"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_runtime_package_imports_only_what_mwaa_ships(runtime: MwaaRuntime) -> None:
    """No requirements.txt: with no NAT, MWAA could install nothing more."""
    distributions = json.loads(
        subprocess.run(
            [
                str(runtime.venv / "bin" / "python"),
                "-c",
                "import json, importlib.metadata as m;"
                "print(json.dumps(m.packages_distributions()))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    bom = bill_of_materials(runtime)
    modules = set().union(*(imported_modules(p) for p in PACKAGE.rglob("*.py")))
    assert modules, "no imports found"
    outside = {}
    for module in sorted(modules - set(sys.stdlib_module_names) - {"ml_platform"}):
        shipped = [d for d in distributions.get(module, []) if normalized(d) in bom]
        if not shipped:
            outside[module] = distributions.get(module, "no distribution")
    assert outside == {}, "imports MWAA's image does not have"
