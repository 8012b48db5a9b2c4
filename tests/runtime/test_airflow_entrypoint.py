"""The self-hosted image's entrypoint (runtime/image/entrypoint.py), without a container:
how ECS's separate variables become Airflow's settings, and what it refuses. The real
commands run in tests/e2e/test_self_hosted.py."""

from __future__ import annotations

import importlib.util
import json
import urllib.parse
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PATH = Path(__file__).resolve().parents[2] / "runtime" / "image" / "entrypoint.py"


@pytest.fixture(scope="module")
def entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("airflow_image_entrypoint", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SECRETS = {
    "AIRFLOW_DB_HOST": "db.internal",
    "AIRFLOW_DB_PORT": "5432",
    "AIRFLOW_DB_NAME": "airflow",
    "AIRFLOW_DB_USER": "airflow",
    "AIRFLOW_DB_PASSWORD": "p%:#?@/ w",
    "AIRFLOW_FERNET_KEY_BODY": "A" * 43,
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt",
    "AIRFLOW__API__SECRET_KEY": "key",
}


def test_the_database_urls_quote_the_password_and_keep_the_ssl_mode(entrypoint: Any) -> None:
    env = dict(SECRETS)
    entrypoint.prepare_environment(env)
    sync = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    asynchronous = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
    quoted = urllib.parse.quote_plus("p%:#?@/ w")
    assert (
        sync == f"postgresql+psycopg2://airflow:{quoted}@db.internal:5432/airflow?sslmode=require"
    )
    # asyncpg refuses psycopg2's sslmode=; it takes the same modes as ssl=.
    assert (
        asynchronous
        == f"postgresql+asyncpg://airflow:{quoted}@db.internal:5432/airflow?ssl=require"
    )
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "A" * 43 + "="
    assert "AIRFLOW_FERNET_KEY_BODY" not in env


def test_a_given_connection_is_left_alone(entrypoint: Any) -> None:
    env = {**SECRETS, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://x@y/z"}
    entrypoint.prepare_environment(env)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://x@y/z"
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" not in env


@pytest.mark.parametrize(
    "missing",
    ["AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW_FERNET_KEY_BODY"],
)
def test_a_missing_shared_secret_stops_the_component_naming_it(
    entrypoint: Any, missing: str
) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    expected = "AIRFLOW__CORE__FERNET_KEY" if missing == "AIRFLOW_FERNET_KEY_BODY" else missing
    with pytest.raises(SystemExit, match=expected):
        entrypoint.prepare_environment(env)


def test_init_needs_the_database_but_not_the_shared_secrets(entrypoint: Any) -> None:
    env = {k: v for k, v in SECRETS.items() if not k.startswith("AIRFLOW__")}
    entrypoint.prepare_environment(env, secrets=False)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def test_a_missing_database_credential_is_named(entrypoint: Any) -> None:
    env = {k: v for k, v in SECRETS.items() if k != "AIRFLOW_DB_PASSWORD"}
    with pytest.raises(SystemExit, match="AIRFLOW_DB_PASSWORD"):
        entrypoint.prepare_environment(env)


@pytest.mark.parametrize(
    ("raw", "message"),
    [("{", "not JSON"), ('{"a": 1}', "JSON list"), ('[{"name": "x"}]', "name and slots")],
)
def test_bad_pools_are_refused_before_anything_runs(
    entrypoint: Any, raw: str, message: str
) -> None:
    with pytest.raises(entrypoint.InitFailed, match=message):
        entrypoint.parse_pools(raw)


def test_an_unknown_command_prints_the_usage(entrypoint: Any, capsys: Any) -> None:
    assert entrypoint.main(["webserver"]) == 2
    assert "api-server | scheduler" in capsys.readouterr().err


def test_the_manifest_gets_its_deploy_time_values_at_start(entrypoint: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    baked = {
        "region": "${AWS::Region}",
        "network": {"subnets": ["${Subnet1}", "${Subnet2}"], "security_groups": ["${Sg.GroupId}"]},
        "jobs": [{"name": "pricing", "environment": {"NOTE": "costs ${5} a day"}}],
    }
    manifest.write_text(json.dumps(baked))
    values = {"AWS::Region": "eu-west-1", "Subnet1": "subnet-1", "Subnet2": "subnet-2",
              "Sg.GroupId": "sg-1"}  # fmt: skip
    entrypoint.fill_deploy_values(manifest, {"ML_PLATFORM_DEPLOY_VALUES": json.dumps(values)})
    filled = json.loads(manifest.read_text())
    assert filled["region"] == "eu-west-1"
    assert filled["network"] == {"subnets": ["subnet-1", "subnet-2"], "security_groups": ["sg-1"]}
    assert filled["jobs"] == baked["jobs"]  # only whole placeholders are filled in
    # A second start finds nothing left to fill, with or without the variable.
    entrypoint.fill_deploy_values(manifest, {})
    assert json.loads(manifest.read_text()) == filled


def test_a_missing_deploy_time_value_stops_the_container_naming_it(
    entrypoint: Any, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"region": "${AWS::Region}", "subnets": ["${Subnet1}"]}))
    with pytest.raises(SystemExit, match=r"\['Subnet1'\]"):
        entrypoint.fill_deploy_values(
            manifest, {"ML_PLATFORM_DEPLOY_VALUES": json.dumps({"AWS::Region": "eu-west-1"})}
        )
    assert "${Subnet1}" in manifest.read_text()  # nothing half-written


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ("A" * 43, "A" * 43 + "="),  # what Secrets Manager generates
        ("B" * 43 + "=", "B" * 43 + "="),  # a whole key
        ("C" * 43 + "=," + "A" * 43 + "=", "C" * 43 + "=," + "A" * 43 + "="),  # rotating
    ],
)
def test_the_fernet_key_is_completed_only_when_generated(
    entrypoint: Any, secret: str, key: str
) -> None:
    env = {**SECRETS, "AIRFLOW_FERNET_KEY_BODY": secret}
    entrypoint.prepare_environment(env)
    assert env["AIRFLOW__CORE__FERNET_KEY"] == key
