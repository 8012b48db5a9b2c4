"""The images' entry point: run the model package the image was built for.

``models/Dockerfile`` sets ``ML_MODEL_PACKAGE`` to its ``MODEL`` build argument. As PID 1
of a container, Python would ignore SIGTERM (the kernel drops signals PID 1 has no handler
for), so StopTask and a spot reclaim would always end in SIGKILL after the stop timeout;
the handler makes SIGTERM end the run at once with 143, as a shell-started process would.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from types import FrameType


def _terminated(signum: int, frame: FrameType | None) -> None:
    print("stopped by SIGTERM", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def main() -> None:
    package = os.environ.get("ML_MODEL_PACKAGE", "")
    if not package:
        sys.exit("ML_MODEL_PACKAGE is not set: build the image with --build-arg MODEL=<folder>")
    signal.signal(signal.SIGTERM, _terminated)
    runpy.run_module(package, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
