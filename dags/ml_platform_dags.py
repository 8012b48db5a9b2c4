"""Airflow DAGs of the ML platform: one per job in the manifest (ml_platform.factory).

A malformed manifest is an import error of this file that names the job and the field.
"""

from ml_platform.factory import dags_from_manifest

globals().update(dags_from_manifest())
