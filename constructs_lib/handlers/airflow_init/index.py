"""Runs self-hosted Airflow's ``init`` task once per deploy and waits for it to end.

``init`` migrates the metadata database, creates the first admin and upserts the pools
(``runtime/image/entrypoint.py``). CDK's Provider framework calls ``on_event`` (start the
task), then ``is_complete`` every 30 s until the task has stopped. A task that fails or
never starts fails this resource: CloudFormation rolls the stack back before any Airflow
service is updated (the services depend on this resource), so the running version keeps
serving.
"""

from __future__ import annotations

from typing import Any

import boto3

ecs = boto3.client("ecs")


def on_event(event: dict[str, Any], _context: object) -> dict[str, Any]:
    props = event["ResourceProperties"]
    physical_id = f"{props['Cluster']}/{props['Container']}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    response = ecs.run_task(
        cluster=props["Cluster"],
        taskDefinition=props["TaskDefinition"],
        launchType="FARGATE",
        count=1,
        startedBy="cloudformation",
        propagateTags="TASK_DEFINITION",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": props["Subnets"],
                "securityGroups": props["SecurityGroups"],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    if response.get("failures") or not response.get("tasks"):
        reasons = "; ".join(
            f"{f.get('arn', '')} {f.get('reason', '')} {f.get('detail', '')}".strip()
            for f in response.get("failures", [])
        )
        raise RuntimeError(f"Airflow's init task did not start: {reasons or 'no task'}")
    return {
        "PhysicalResourceId": physical_id,
        "Data": {"TaskArn": response["tasks"][0]["taskArn"]},
    }


def is_complete(event: dict[str, Any], _context: object) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    task_arn = event["Data"]["TaskArn"]
    tasks = ecs.describe_tasks(cluster=props["Cluster"], tasks=[task_arn])["tasks"]
    if not tasks:
        raise RuntimeError(f"Airflow's init task {task_arn} is gone")
    (task,) = tasks
    if task["lastStatus"] != "STOPPED":
        return {"IsComplete": False}
    container: Any = next((c for c in task["containers"] if c["name"] == props["Container"]), {})
    if container.get("exitCode") == 0:
        return {"IsComplete": True, "Data": {"TaskArn": task_arn}}
    task_id = task_arn.rsplit("/", 1)[-1]
    raise RuntimeError(
        f"Airflow's init task failed (exit code {container.get('exitCode')}: "
        f"{container.get('reason') or task.get('stoppedReason', 'no reason given')}); the "
        f"running Airflow was left as it was. Its log: log group {props['LogGroup']}, "
        f"stream {props['LogStreamPrefix']}/{props['Container']}/{task_id}"
    )
