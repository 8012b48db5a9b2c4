"""The self-hosted Airflow image's entrypoint: one image, one command per ECS service.

    api-server | scheduler | dag-processor | triggerer   a long-running component
    init                                                migrate, users, pools (deploy)
    health <component>                                  exit 0 when healthy (ECS check)
    airflow <args...>                                   any Airflow CLI command

Before any of them, the manifest's deploy-time placeholders (``"${LogicalId}"``: subnets,
security group, region, known only once CloudFormation has made them) are filled in from
``ML_PLATFORM_DEPLOY_VALUES``, and the settings ECS passes as separate variables
(database address and credentials from the RDS secret, the fernet key body) become
Airflow's own settings, and
the secrets every component must share are checked: a component with a missing JWT secret
or secret key would make up its own and fail quietly (403s on the Execution API, log
fetches refused). Long-running components are ``os.execvp``'d, so SIGTERM from ECS
reaches Airflow itself (ECS's init process, tini, is PID 1).

Standard library only: it runs before Airflow is imported, and ``health`` must be cheap.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Secrets every component must get, and get equal (issue13-research.md, section 1).
SHARED_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
#: `airflow jobs check` job types of the components without an HTTP health endpoint.
JOB_TYPES = {"dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}
ADMIN_ROLE = "Admin"
#: Edits DAG runs (their notes); cannot touch pools, connections or variables.
NOTES_ROLE = "User"
#: The manifest beside the DAG file, as the image bakes it.
MANIFEST = Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow")) / "dags" / "manifest.json"
#: A whole JSON string value that CloudFormation would have filled in (``"${Subnet1}"``).
PLACEHOLDER = re.compile(r'"\$\{([A-Za-z0-9:.]+)\}"')
#: What Secrets Manager generates for the fernet key: 43 of [A-Za-z0-9], the base64 of 32
#: bytes without its "=". A whole key, or a rotation list "new,old", is taken as it is.
FERNET_BODY = re.compile(r"^[A-Za-z0-9]{43}$")
_ERROR_LINE = re.compile(r"^[\w.]+(Error|Exception|Exit)\b.*")


class InitFailed(Exception):
    """A step of ``init`` failed; the message names the step and Airflow's reason."""


def _quote(value: str) -> str:
    return urllib.parse.quote_plus(value)


def database_settings(env: Mapping[str, str]) -> dict[str, str]:
    """``sql_alchemy_conn`` (psycopg2) and ``sql_alchemy_conn_async`` (asyncpg) from
    AIRFLOW_DB_*, unless the connection is given whole.

    The async URL is spelled out because Airflow 3.3.1 derives it by swapping the driver
    only (``settings._get_async_conn_uri_from_sync``): the query string is kept, and asyncpg
    refuses psycopg2's ``sslmode`` (``connect() got an unexpected keyword argument``), while
    it takes the same modes as ``ssl=``.
    """
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return {}
    missing = [
        name
        for name in ("AIRFLOW_DB_HOST", "AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD")
        if not env.get(name)
    ]
    if missing:
        raise SystemExit(
            f"entrypoint: {', '.join(missing)} not set (the database address and the RDS "
            "secret's username/password), nor AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        )
    where = (
        f"{_quote(env['AIRFLOW_DB_USER'])}:{_quote(env['AIRFLOW_DB_PASSWORD'])}"
        f"@{env['AIRFLOW_DB_HOST']}:{env.get('AIRFLOW_DB_PORT', '5432')}"
        f"/{_quote(env.get('AIRFLOW_DB_NAME', 'airflow'))}"
    )
    mode = env.get("AIRFLOW_DB_SSLMODE", "require")
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{where}?sslmode={mode}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+asyncpg://{where}?ssl={mode}",
    }


def prepare_environment(
    env: MutableMapping[str, str], *, secrets: bool = True, database: bool = True
) -> None:
    """Turn what ECS passes into Airflow's settings. Refuse a missing shared secret
    (``secrets``: the long-running components) or database setting (``database``)."""
    try:
        env.update(database_settings(env))
    except SystemExit:
        if database:
            raise
    body = env.pop("AIRFLOW_FERNET_KEY_BODY", "")
    if body and not env.get("AIRFLOW__CORE__FERNET_KEY"):
        # 43 characters of [A-Za-z0-9] + "=" is url-safe base64 of 32 bytes.
        env["AIRFLOW__CORE__FERNET_KEY"] = body + "=" if FERNET_BODY.match(body) else body
    missing = [name for name in ("AIRFLOW__CORE__FERNET_KEY", *SHARED_SECRETS) if not env.get(name)]
    if missing and secrets:
        raise SystemExit(
            f"entrypoint: {', '.join(missing)} not set: every component needs the same "
            "values (from Secrets Manager), or each would make up its own"
        )
    if "FORWARDED_ALLOW_IPS" not in env:
        # Behind the load balancer; the api-server's security group admits only it.
        env["FORWARDED_ALLOW_IPS"] = "*"


def fill_deploy_values(path: Path, env: Mapping[str, str]) -> None:
    """Replace each ``"${Name}"`` in the manifest with ``ML_PLATFORM_DEPLOY_VALUES[Name]``;
    refuse to start, naming them, when values are missing. A filled manifest is left alone."""
    if not path.is_file():
        return
    text = path.read_text()
    needed = sorted(set(PLACEHOLDER.findall(text)))
    if not needed:
        return
    try:
        values = json.loads(env.get("ML_PLATFORM_DEPLOY_VALUES") or "{}")
    except json.JSONDecodeError as error:
        raise SystemExit(f"entrypoint: ML_PLATFORM_DEPLOY_VALUES is not JSON: {error}") from None
    missing = [name for name in needed if not isinstance(values.get(name), str)]
    if missing:
        raise SystemExit(
            f"entrypoint: the manifest needs deploy-time values for {missing}, which "
            "ML_PLATFORM_DEPLOY_VALUES does not hold (the task definition sets it)"
        )
    # In place (the file is the airflow user's, its folder is not): this runs before
    # Airflow starts, the container's only process.
    path.write_text(PLACEHOLDER.sub(lambda match: json.dumps(values[match.group(1)]), text))


# -- init ----------------------------------------------------------------------------------


def _airflow(*args: str, secret: str = "") -> str:
    """Run one Airflow CLI command, echo its output; raise InitFailed naming it."""
    shown = " ".join(a if not secret or a != secret else "***" for a in args)
    print(f"init: airflow {shown}", flush=True)
    done = subprocess.run(
        ["airflow", *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    output = done.stdout + done.stderr
    sys.stdout.write(output)
    if done.returncode != 0:
        errors = [line for line in output.splitlines() if _ERROR_LINE.match(line.strip())]
        reason = errors[-1].strip() if errors else (output.strip().splitlines() or ["-"])[-1]
        raise InitFailed(f"`airflow {shown}` failed (exit {done.returncode}): {reason}")
    return output


def parse_pools(raw: str) -> list[dict[str, object]]:
    """ML_PLATFORM_POOLS: a JSON list of {name, slots, description, include_deferred}."""
    try:
        pools = json.loads(raw or "[]")
    except json.JSONDecodeError as error:
        raise InitFailed(f"ML_PLATFORM_POOLS is not JSON: {error}") from None
    if not isinstance(pools, list):
        raise InitFailed("ML_PLATFORM_POOLS must be a JSON list of pools")
    for pool in pools:
        if not isinstance(pool, dict) or not {"name", "slots"} <= pool.keys():
            raise InitFailed(f"ML_PLATFORM_POOLS: each pool needs a name and slots: {pool!r}")
    return pools


def upsert_pools(pools: Sequence[Mapping[str, object]]) -> None:
    """Create or update each pool, then read every one back (a pool Airflow did not take
    fails the deploy, naming it)."""
    if not pools:
        return
    wanted = {
        str(p["name"]): {
            "slots": p["slots"],
            "description": p.get("description", ""),
            "include_deferred": bool(p.get("include_deferred", False)),
        }
        for p in pools
    }
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pools.json")
        with open(path, "w") as out:
            json.dump(wanted, out)
        _airflow("pools", "import", path)
        exported = os.path.join(folder, "exported.json")
        _airflow("pools", "export", exported)
        with open(exported) as found_file:
            found = json.load(found_file)
    for name, pool in wanted.items():
        got = found.get(name)
        if got is None:
            raise InitFailed(f"pool {name!r} is missing after the import")
        for key, value in pool.items():
            if got.get(key) != value:
                raise InitFailed(f"pool {name!r}: {key} is {got.get(key)!r}, not {value!r}")
    print(f"init: pools {', '.join(sorted(wanted))} upserted and read back", flush=True)


def ensure_user(username: str, password: str, role: str) -> None:
    """Create the user, or reset its password to the secret's on every later init, so
    rotating the secret and redeploying rotates the login."""
    created = _airflow(
        "users", "create", "--role", role, "--username", username,
        "--email", f"{username}@example.invalid",
        "--firstname", username, "--lastname", role.lower(), "--password", password,
        secret=password,
    )  # fmt: skip
    if "already exist" in created:
        _airflow(
            "users", "reset-password", "--username", username, "--password", password,
            secret=password,
        )  # fmt: skip


def ensure_users(env: Mapping[str, str]) -> None:
    """The first admin, and the user runs write their DAG run notes as (role User)."""
    username = env.get("AIRFLOW_ADMIN_USERNAME", "")
    password = env.get("AIRFLOW_ADMIN_PASSWORD", "")
    if not username or not password:
        raise InitFailed("AIRFLOW_ADMIN_USERNAME and AIRFLOW_ADMIN_PASSWORD must be set")
    ensure_user(username, password, ADMIN_ROLE)
    notes_user, notes_password = (
        env.get("AIRFLOW_NOTES_USERNAME"),
        env.get("AIRFLOW_NOTES_PASSWORD"),
    )
    if notes_user and notes_password:
        ensure_user(notes_user, notes_password, NOTES_ROLE)


#: Run with Airflow's interpreter: is the database's schema one this Airflow knows?
_SCHEMA_CHECK = """
from alembic.script import ScriptDirectory
from airflow.utils.db import _get_alembic_config, _get_current_revision
from airflow.utils.session import create_session
with create_session() as session:
    current = _get_current_revision(session)
script = ScriptDirectory.from_config(_get_alembic_config())
known = current is None or any(r.revision == current for r in script.walk_revisions())
print(f"schema {current} {'known' if known else 'newer'}")
"""


def schema_is_newer() -> bool:
    """True when the database was migrated by a newer Airflow than this image's.

    CloudFormation rolls a failed deploy back by updating the init resource to the
    previous task definition: the previous Airflow then finds a schema it does not know,
    and ``db migrate`` would fail the rollback. That init migrates nothing; going back a
    version for good needs ``airflow db downgrade`` first (README: upgrading Airflow).
    """
    _airflow("db", "check")  # reachable first: a clear error if not
    done = subprocess.run(
        [sys.executable, "-c", _SCHEMA_CHECK], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise InitFailed(f"reading the schema version failed: {done.stderr.strip()[-500:]}")
    print(f"init: {done.stdout.strip()}", flush=True)
    return done.stdout.strip().endswith(" newer")


def init(env: Mapping[str, str]) -> int:
    try:
        pools = parse_pools(env.get("ML_PLATFORM_POOLS", ""))
        if schema_is_newer():
            print(
                "init: the schema is newer than this Airflow (a rollback): nothing migrated, "
                "nothing changed",
                flush=True,
            )
            return 0
        _airflow("db", "migrate")
        ensure_users(env)
        upsert_pools(pools)
    except InitFailed as error:
        print(f"init failed: {error}", file=sys.stderr, flush=True)
        return 1
    print("init: done", flush=True)
    return 0


# -- health --------------------------------------------------------------------------------


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError) as error:
        print(f"health: {url}: {error}", file=sys.stderr)
        return False


def health(component: str, env: Mapping[str, str]) -> int:
    if component == "api-server":
        port = env.get("AIRFLOW__API__PORT", "8080")
        return 0 if _http_ok(f"http://127.0.0.1:{port}/api/v2/monitor/health") else 1
    if component == "scheduler":
        port = env.get("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", "8974")
        return 0 if _http_ok(f"http://127.0.0.1:{port}/health") else 1
    if component in JOB_TYPES:
        command = ["airflow", "jobs", "check", "--job-type", JOB_TYPES[component], "--local"]
        return subprocess.run(command, check=False).returncode
    print(f"health: unknown component {component!r}; one of {COMPONENTS}", file=sys.stderr)
    return 2


# -- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    command, *rest = list(argv) or ["help"]
    if command not in (*COMPONENTS, "init", "health", "airflow"):
        print(__doc__, file=sys.stderr)
        return 0 if command in ("help", "--help", "-h") else 2
    if command != "health":
        fill_deploy_values(MANIFEST, os.environ)
    # init needs the database only; a one-off `airflow ...` command refuses nothing.
    prepare_environment(
        os.environ, secrets=command in (*COMPONENTS, "health"), database=command != "airflow"
    )
    if command == "init":
        return init(os.environ)
    if command == "health":
        return health(rest[0] if rest else "", os.environ)
    if command == "api-server":
        rest = ["--proxy-headers", *rest]
    args = rest if command == "airflow" else [command, *rest]
    os.execvp("airflow", ["airflow", *args])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
