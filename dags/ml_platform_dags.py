"""Airflow DAGs of the ML platform: one per job in the manifest beside this file.

The code lives in the ``ml_platform`` package, deployed as ``plugins.zip``: Airflow 3's
triggerer imports triggers only from plugins or installed packages, never from here.
A malformed manifest is an import error of this file that names the job and the field.
"""

from pathlib import Path

from ml_platform.factory import dags_from_manifest

globals().update(dags_from_manifest(Path(__file__).resolve().parent))
