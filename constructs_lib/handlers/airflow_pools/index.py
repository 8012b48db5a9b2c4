"""Deploy-time handler: create or overwrite the environment's Airflow pools, then read them
back and fail the deploy, naming the pool, when one differs.

Runs as the ``AirflowPools`` custom resource's Lambda (behind CDK's Provider framework)
with the Lambda runtime's boto3; the local harness runs the same ``apply`` against its own
Airflow. Airflow's bulk ``PATCH /pools`` answers 200 even when an item fails, so neither
its status code nor its body alone proves the pools are right: the read-back does.
"""

from __future__ import annotations

import json
from typing import Any

#: Airflow's REST API pages lists at 50 by default.
PAGE = 100


class PoolsNotApplied(RuntimeError):
    """Airflow did not end up with the declared pools; the message names each pool."""


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    mwaa = boto3.client("mwaa")
    if not hasattr(mwaa, "invoke_rest_api"):  # added in boto3 1.35.47
        raise PoolsNotApplied(
            f"this Lambda runtime's boto3 {boto3.__version__} lacks InvokeRestApi"
        )
    return apply(event, mwaa)


def apply(event: dict[str, Any], mwaa: Any) -> dict[str, Any]:
    """Handle one CloudFormation event; return the Provider framework's answer."""
    props = event["ResourceProperties"]
    environment = props["EnvironmentName"]
    physical_id = f"{environment}-pools"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": physical_id}  # pools go with the environment
    pools: list[dict[str, Any]] = json.loads(props["Pools"])
    answer = _call(mwaa, environment, "PATCH", "/pools", body=upsert_body(pools))
    refused = (answer.get("create") or {}).get("errors") or []
    if refused:
        raise PoolsNotApplied(
            f"Airflow {environment} refused pools: "
            + "; ".join(f"{e.get('error')} ({e.get('status_code')})" for e in refused)
        )
    found = read_pools(mwaa, environment)
    differences = compare(pools, found)
    if differences:
        raise PoolsNotApplied(
            f"Airflow {environment} pools differ after the upsert: " + "; ".join(differences)
        )
    return {
        "PhysicalResourceId": physical_id,
        "Data": {"Pools": ",".join(p["name"] for p in pools)},
    }


def upsert_body(pools: list[dict[str, Any]]) -> dict[str, Any]:
    """Body of ``PATCH /pools``: create each pool, overwriting one that exists."""
    entities = [
        {
            "name": pool["name"],
            "slots": pool["slots"],
            "description": pool.get("description", ""),
            "include_deferred": pool["include_deferred"],
        }
        for pool in pools
    ]
    return {
        "actions": [{"action": "create", "action_on_existence": "overwrite", "entities": entities}]
    }


def read_pools(mwaa: Any, environment: str) -> dict[str, dict[str, Any]]:
    """Every pool Airflow has, by name (``GET /pools``, page by page)."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = _call(mwaa, environment, "GET", "/pools", query={"limit": PAGE, "offset": offset})
        for pool in page.get("pools", []):
            found[pool["name"]] = pool
        offset += PAGE
        if offset >= int(page.get("total_entries", 0)) or not page.get("pools"):
            return found


def compare(wanted: list[dict[str, Any]], found: dict[str, dict[str, Any]]) -> list[str]:
    """What differs, one line per pool: slots, description, include_deferred."""
    out = []
    for pool in wanted:
        name = pool["name"]
        actual = found.get(name)
        if actual is None:
            out.append(f"pool {name!r} is missing")
            continue
        for field in ("slots", "description", "include_deferred"):
            want, got = pool.get(field), actual.get(field)
            if field == "description":
                want, got = want or "", got or ""
            if want != got:
                out.append(f"pool {name!r}: {field} is {got!r}, declared {want!r}")
    return out


def _call(
    mwaa: Any,
    environment: str,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {"Name": environment, "Path": path, "Method": method}
    if body is not None:
        request["Body"] = body
    if query is not None:
        request["QueryParameters"] = query
    try:
        response = mwaa.invoke_rest_api(**request)
    except Exception as error:
        # RestApiClientException / RestApiServerException carry Airflow's own answer.
        answer = getattr(error, "response", None) or {}
        status = answer.get("RestApiStatusCode", "no answer")
        detail = answer.get("RestApiResponse") or error
        raise PoolsNotApplied(f"{method} {path} on {environment}: {status}: {detail}") from None
    return dict(response.get("RestApiResponse") or {})
