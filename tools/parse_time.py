"""How long Airflow takes to parse the DAG file for a manifest, as its DAG processor does:
a fresh process of the MWAA parity runtime, in MWAA's layout, with Airflow's core loaded,
so our package and the Amazon provider's hooks are imported inside the measured time.

    .venv/bin/python -m tools.parse_time cdk.out/manifests/dev.json [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from config import ENVIRONMENTS
from constructs_lib.plugins_bundle import build_plugins_zip
from simulator.airflow_local import install_mwaa_layout, mwaa_environment, parity_runtime

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
    parser.add_argument("--json", action="store_true", help="also print a JSON line")
    args = parser.parse_args()
    # MWAA's runtime and layout: the DAG file and manifest in dags/, the package in plugins/.
    home = Path(tempfile.mkdtemp(prefix="ml-platform-parse-"))
    install_mwaa_layout(
        home,
        plugins_zip=build_plugins_zip(REPO / "plugins"),
        dags=REPO / "dags",
        manifest=json.loads(args.manifest.read_text()),
    )
    python = parity_runtime(ENVIRONMENTS["dev"].airflow.version).venv / "bin" / "python"
    seconds: list[float] = []
    dags = 0
    for _ in range(args.repeat):
        out = subprocess.run(
            [str(python), "-c", MEASURE.format(dags=str(home / "dags"))],
            env=mwaa_environment(home),
            cwd=home,
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
    if args.json:
        print(json.dumps({"dags": dags, "median_s": round(statistics.median(seconds), 3)}))


if __name__ == "__main__":
    main()
