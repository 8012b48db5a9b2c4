"""How long Airflow takes to parse the DAG file for a manifest, as its DAG processor does:
a fresh process with Airflow's core loaded, so our package and the Amazon provider's
hooks are imported inside the measured time.

    python -m tools.parse_time cdk.out/manifests/dev.json [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURE = """
import time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder={dags!r})
elapsed = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
print(len(bag.dags), elapsed)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "ML_PLATFORM_MANIFEST": str(args.manifest.resolve()),
    }
    seconds: list[float] = []
    dags = 0
    for _ in range(args.repeat):
        out = subprocess.run(
            [sys.executable, "-c", MEASURE.format(dags=str(REPO / "dags"))],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        count, elapsed = out.split()[-2:]
        dags = int(count)
        seconds.append(float(elapsed))
    print(
        f"{dags} DAGs from {args.manifest}: parse {statistics.median(seconds):.3f} s, median "
        f"of {args.repeat} fresh processes (min {min(seconds):.3f}, max {max(seconds):.3f})"
    )


if __name__ == "__main__":
    main()
