"""``plugins.zip``: the runtime package as MWAA installs it.

MWAA unpacks the zip into its plugins folder, which ``airflow.settings`` puts on
``sys.path`` of every component, the triggerer included; Airflow 3's triggerer imports
triggers only from there or from installed packages, never from the DAGs folder.

The zip is built byte for byte the same from the same files (sorted entries, fixed
timestamps and modes), so its asset hash, and the environment's plugins version, change
only when the code does.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import zipfile
from pathlib import Path

#: Not shipped: bytecode is compiled where it runs.
_SKIPPED_PARTS = {"__pycache__"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}
_EPOCH = (1980, 1, 1, 0, 0, 0)


def plugin_files(source: Path) -> list[Path]:
    """The files that go into the zip, relative to ``source``, in a fixed order."""
    return sorted(
        path.relative_to(source)
        for path in source.rglob("*")
        if path.is_file()
        and not _SKIPPED_PARTS & set(path.relative_to(source).parts)
        and path.suffix not in _SKIPPED_SUFFIXES
    )


@functools.cache
def build_plugins_zip(source: Path) -> Path:
    """Zip ``source`` (the repository's ``plugins/`` folder) at its root; return the zip."""
    files = plugin_files(source)
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.as_posix().encode() + b"\0" + (source / relative).read_bytes())
    target = (
        Path(tempfile.mkdtemp(prefix="mlp-plugins-")) / f"plugins-{digest.hexdigest()[:12]}.zip"
    )
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (source / relative).read_bytes())
    return target
