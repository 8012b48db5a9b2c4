"""The one table of MWAA runtimes: what Amazon MWAA runs for each Airflow version it offers.

Config refuses an ``airflow.version`` that is not here. The local harness (``make demo``,
the end-to-end tests, ``make faults``, ``make bench``) runs Airflow from the version's
parity project, which pins every package of MWAA's image; ``tests/runtime`` fails when
that project's lock drifts from this table.

Source of each row: aws/amazon-mwaa-docker-images, ``images/airflow/<version>/``
(the Dockerfile's Python, and ``BillOfMaterials/<version>/Python-Packages-BOM.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class MwaaRuntime:
    """What MWAA's image for one Airflow version holds."""

    airflow: str
    python: str
    task_sdk: str
    amazon_provider: str
    aiobotocore: str
    botocore: str
    pydantic: str
    #: The parity project (a uv project pinning MWAA's bill of materials), from the repo.
    project: str

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @property
    def venv(self) -> Path:
        return REPO / self.project / ".venv"

    def packages(self) -> dict[str, str]:
        """Distribution name -> version, as the parity project must lock them."""
        return {
            "apache-airflow": self.airflow,
            "apache-airflow-core": self.airflow,
            "apache-airflow-task-sdk": self.task_sdk,
            "apache-airflow-providers-amazon": self.amazon_provider,
            "aiobotocore": self.aiobotocore,
            "botocore": self.botocore,
            "pydantic": self.pydantic,
        }


MWAA_RUNTIMES: dict[str, MwaaRuntime] = {
    "3.3.1": MwaaRuntime(
        airflow="3.3.1",
        python="3.12.13",
        task_sdk="1.3.1",
        amazon_provider="9.34.0",
        aiobotocore="3.9.0",
        botocore="1.43.56",
        pydantic="2.13.4",
        project="runtime/mwaa-3.3.1",
    ),
}
