"""Model images built and run as containers, as ``cdk deploy`` builds them and Fargate
runs them.

The build is the one the CDK CLI's asset publisher runs for a job's image asset: the
staged context in ``cdk.out`` (or ``ImageBuild`` for a model folder), its Dockerfile, its
build arguments, ``--platform linux/amd64``. One difference, and only in the base: no image
registry is reachable here, so ``BASE_IMAGE`` is a Debian bookworm root file system made
with ``debootstrap`` from Debian's packages, built once and kept in the engine's storage.
The Dockerfile's own ``ARG BASE_IMAGE=...python:3.X-slim`` picks which local base:

- ``python:3.11-slim`` (the model images): Debian's Python 3.11 in a venv at
  ``/usr/local``, as ``python:3.11-slim`` has it.
- ``python:3.12-slim`` (the self-hosted Airflow image): Debian bookworm has no Python
  3.12, so this base is minbase + the shared libraries CPython's modules link
  (libssl3, libsqlite3, libffi8, liblzma5, libbz2, libreadline8, ...) + this machine's
  pyenv build of 3.12 (``~/.pyenv/versions/3.12.*``, compiled on this same bookworm)
  copied to ``/usr/local``. Here the local image differs from ``python:3.12-slim``: the
  patch release is pyenv's (3.12.1 here; python:3.12-slim has the newest 3.12, MWAA
  3.12.13), CPython is built by pyenv rather than the Docker library's recipe, pip
  is the one bundled with that release, the base sets ``PIP_CERT`` to the build-time
  mount of the host's CA bundle (below), and the build passes ``SSL_CERT_FILE`` (for uv)
  as a build argument to a Dockerfile that declares it.

The engine is podman with the runc runtime (crun refuses this host's cgroup setup), or
Docker where that is what the machine has (``CONTAINER_ENGINE=docker``); then the
Dockerfile's own base is pulled from its registry. Every build and run gets
``--ulimit nofile/nproc`` because raising rlimits is not permitted here (FACTS.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from constructs_lib.image_build import ImageBuild

ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
BASE_IMAGE = "localhost/ml-platform-base:bookworm-py3.11"
#: The local base for each ``python:<minor>-slim`` a Dockerfile names in its BASE_IMAGE.
BASE_IMAGES = {"3.11": BASE_IMAGE, "3.12": "localhost/ml-platform-base:bookworm-py3.12"}
#: Debian packages holding the shared libraries pyenv's CPython 3.12 links against
#: (ldd of python3.12 and lib-dynload/*.so on the build host, Tk/X11 left out).
PY312_LIBRARIES = (
    "ca-certificates", "libssl3", "libsqlite3-0", "libffi8", "liblzma5", "libbz2-1.0",
    "libreadline8", "libncursesw6", "zlib1g", "libuuid1", "libexpat1", "libnsl2",
    "libtirpc3", "libcrypt1",
)  # fmt: skip
#: Modules that need those libraries: the base is refused if one does not import.
PY312_CHECK = "import ssl, sqlite3, ctypes, lzma, bz2, readline, zlib, uuid, hashlib, decimal"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
#: The self-hosted Airflow image (runtime/image) as ``make containers`` tags it.
AIRFLOW_VERSION = "3.3.1"
AIRFLOW_IMAGE = f"localhost/ml-platform-airflow:{AIRFLOW_VERSION}"
#: Where the host's CA bundle is mounted during a build (pip inside needs it to reach PyPI).
BUILD_CA = "/run/host-ca.crt"
#: ECS's reason for a container the kernel killed for its memory limit.
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


class EngineMissing(RuntimeError):
    """No usable container engine: ``make containers`` installs one."""


@dataclass(frozen=True)
class Engine:
    command: tuple[str, ...]

    @property
    def is_podman(self) -> bool:
        return Path(self.command[0]).name == "podman"

    @classmethod
    def detect(cls) -> Engine:
        chosen = os.environ.get("CONTAINER_ENGINE", "")
        if chosen in ("", "podman") and shutil.which("podman"):
            return cls(("podman", "--runtime", "runc"))
        if chosen in ("", "docker") and shutil.which("docker"):
            probe = subprocess.run(["docker", "info"], capture_output=True, check=False)
            if probe.returncode == 0:
                return cls(("docker",))
        raise EngineMissing(
            "no container engine: run `make containers` (installs podman, runc and "
            "debootstrap from Debian's packages), or set CONTAINER_ENGINE=docker"
        )

    def __call__(
        self, *args: str, check: bool = True, timeout: float | None = 900
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.command[:1] + args[:2])} failed ({done.returncode}):\n"
                f"{done.stderr[-3000:] or done.stdout[-3000:]}"
            )
        return done

    def has_image(self, reference: str) -> bool:
        return self("image", "inspect", reference, check=False).returncode == 0

    # -- the base ---------------------------------------------------------------------

    def ensure_base(self, python: str = "3.11") -> str | None:
        """The local base image for Python ``python`` (podman); None means the
        Dockerfile's own (Docker)."""
        if not self.is_podman:
            return None
        if python not in BASE_IMAGES:
            raise EngineMissing(
                f"no local base for Python {python}; local bases: {sorted(BASE_IMAGES)}"
            )
        if not self.has_image(BASE_IMAGES[python]):
            if python == "3.11":
                self._build_base()
            else:
                self._build_base_py312()
        return BASE_IMAGES[python]

    def _debootstrap(self, root: Path, packages: Sequence[str]) -> None:
        if shutil.which("debootstrap") is None:
            raise EngineMissing("debootstrap is missing: run `make containers`")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
             "bookworm", str(root), DEBIAN_MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip

    def _import_root(self, root: Path, tag: str, changes: Sequence[str]) -> None:
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        args = [arg for change in changes for arg in ("--change", change)]
        imported = subprocess.run(
            [*self.command, "import", *args, "-", tag],
            stdin=tar.stdout, capture_output=True, text=True, check=False,
        )  # fmt: skip
        tar.wait()
        if imported.returncode != 0:
            raise RuntimeError(f"importing the base image {tag} failed: {imported.stderr}")

    def _build_base(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="ml-platform-rootfs-"))
        try:
            self._debootstrap(root, ["python3", "python3-venv", "ca-certificates"])
            # python, pip and site-packages under /usr/local, as in python:3.11-slim.
            subprocess.run(
                ["chroot", str(root), "python3", "-m", "venv", "/usr/local"],
                check=True, capture_output=True,
            )  # fmt: skip
            self._import_root(root, BASE_IMAGE, [f"ENV PIP_CERT={BUILD_CA}", 'CMD ["python3"]'])
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _build_base_py312(self) -> None:
        """minbase + CPython's shared libraries + pyenv's 3.12 at /usr/local (see the
        module's docstring for how this differs from python:3.12-slim)."""
        source = pyenv_python("3.12")
        root = Path(tempfile.mkdtemp(prefix="ml-platform-rootfs-"))
        try:
            self._debootstrap(root, PY312_LIBRARIES)
            # The interpreter and its standard library; not its tests, IDLE, Tk, the
            # scripts whose shebangs name the pyenv path, nor site-packages (pip comes
            # from ensurepip below, as a fresh install would have it).
            copy = subprocess.Popen(
                ["tar", "-C", str(source), "-c",
                 "--exclude=./lib/python3.12/test", "--exclude=./lib/python3.12/idlelib",
                 "--exclude=./lib/python3.12/tkinter", "--exclude=./lib/python3.12/turtledemo",
                 "--exclude=./lib/python3.12/lib-dynload/_tkinter*",
                 "--exclude=./lib/python3.12/site-packages/*",
                 "--exclude=./lib/python3.12/config-3.12-*/*.a",
                 "--exclude=./bin/pip*", "--exclude=./bin/idle*", "--exclude=./bin/2to3*",
                 "--exclude=./bin/pydoc*", "--exclude=./bin/*-config", "--exclude=./bin/*.py",
                 "."],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            subprocess.run(
                ["tar", "-C", str(root / "usr" / "local"), "-x"],
                stdin=copy.stdout, check=True, capture_output=True,
            )  # fmt: skip
            copy.wait()
            for command in (
                ["ldconfig"],
                ["/usr/local/bin/python3.12", "-m", "ensurepip", "--default-pip"],
                ["/usr/local/bin/python3.12", "-c", PY312_CHECK],
            ):
                done = subprocess.run(
                    ["chroot", str(root), *command], capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    raise RuntimeError(
                        f"Python 3.12 base: {' '.join(command)} failed:\n{done.stderr[-2000:]}"
                    )
            self._import_root(
                root,
                BASE_IMAGES["3.12"],
                [f"ENV PIP_CERT={BUILD_CA}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'],
            )  # fmt: skip
        finally:
            shutil.rmtree(root, ignore_errors=True)

    # -- builds -----------------------------------------------------------------------

    def build(self, source: BuildSource, tag: str) -> str:
        """Build ``source`` as ``tag``; return the image id. Unchanged: seconds (cache)."""
        base = self.ensure_base(source.python)
        args = ["build", "--network", "host", *ULIMITS, "--platform", "linux/amd64"]
        if base is not None:
            args += ["--build-arg", f"BASE_IMAGE={base}"]
            if HOST_CA.is_file():
                args += ["-v", f"{HOST_CA}:{BUILD_CA}:ro"]
                if "ARG SSL_CERT_FILE" in (source.context / source.dockerfile).read_text():
                    # uv reads it; a build argument, so it stays out of the image.
                    args += ["--build-arg", f"SSL_CERT_FILE={BUILD_CA}"]
        for key, value in source.build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        args += ["-f", str(source.context / source.dockerfile), "-t", tag, str(source.context)]
        self(*args)
        return self("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()

    # -- runs -------------------------------------------------------------------------

    def run(
        self,
        image: str,
        *,
        command: Sequence[str],
        environment: Mapping[str, str],
        cpu_units: int,
        memory_mib: int,
        emit: Callable[[str], None],
    ) -> RunningContainer:
        """Start a container as Fargate would: the task's cpu and memory as hard limits
        (no swap, so going over is an OOM kill), its environment, its command."""
        name = f"ml-platform-task-{uuid.uuid4().hex[:12]}"
        args = [
            "create", "--name", name, "--network", "host", *ULIMITS,
            "--memory", f"{memory_mib}m", "--memory-swap", f"{memory_mib}m",
            "--cpus", f"{cpu_units / 1024:g}",
        ]  # fmt: skip
        for key, value in environment.items():
            args += ["-e", f"{key}={value}"]
        container_id = self(*args, image, *command).stdout.strip().splitlines()[-1]
        process = subprocess.Popen(
            [*self.command, "start", "--attach", container_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return RunningContainer(self, container_id, process, emit)


@dataclass(frozen=True)
class BuildSource:
    """A build context, its Dockerfile and build arguments."""

    context: Path
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> str:
        """The Python minor of the Dockerfile's default base (``python:3.X-slim``)."""
        text = (self.context / self.dockerfile).read_text()
        found = re.search(r"^ARG BASE_IMAGE=\S*python:(3\.\d+)", text, re.MULTILINE)
        return found.group(1) if found else "3.11"

    @classmethod
    def of(cls, build: ImageBuild) -> BuildSource:
        return cls(build.context, build.dockerfile, dict(build.build_args))

    @classmethod
    def from_assembly(cls, cdk_out: Path, asset_hash: str) -> BuildSource:
        """The staged image asset, exactly as the CDK CLI's publisher builds it."""
        for manifest in cdk_out.glob("**/*.assets.json"):
            images = json.loads(manifest.read_text()).get("dockerImages", {})
            if asset_hash in images:
                source = images[asset_hash]["source"]
                return cls(
                    (manifest.parent / source["directory"]).resolve(),
                    source.get("dockerFile", "Dockerfile"),
                    dict(source.get("dockerBuildArgs", {})),
                )
        raise KeyError(f"no image asset {asset_hash} in {cdk_out}")


def pyenv_python(minor: str) -> Path:
    """The newest pyenv build of Python ``minor`` on this machine (its prefix folder)."""
    found = sorted(
        Path.home().glob(f".pyenv/versions/{minor}.*/bin/python{minor}"),
        key=lambda p: [int(n) for n in p.parents[1].name.split(".") if n.isdigit()],
    )
    if not found:
        raise EngineMissing(f"no Python {minor} under ~/.pyenv/versions for the local base")
    return found[-1].parents[1]


def kernel_oom_killed(container_id: str) -> bool:
    """Whether the kernel's OOM killer ended a process of this container's memory cgroup.

    podman 4.3 with runc on this host's cgroup v1 hierarchy never sets ``OOMKilled``; the
    kernel log names the cgroup (``oom_memcg=/libpod_parent/libpod-<id>``) for each kill.
    """
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    return any("oom-kill" in line and container_id in line for line in log.splitlines())


class RunningContainer:
    """A container started by ``Engine.run``: its output goes to ``emit`` line by line."""

    def __init__(
        self,
        engine: Engine,
        container_id: str,
        process: subprocess.Popen[str],
        emit: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.name = container_id
        self.process = process
        #: Set when the container has exited: ECS's container reason (OOM), or "".
        self.reason = ""
        self.image_id = ""
        self._exit: int | None = None
        self._reader = threading.Thread(target=self._pump, args=(emit,), daemon=True)
        self._reader.start()

    def _pump(self, emit: Callable[[str], None]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            emit(line.rstrip("\n"))

    def poll(self) -> int | None:
        if self._exit is not None:
            return self._exit
        if self.process.poll() is None:
            return None
        self._reader.join(timeout=10)
        state = self.engine(
            "inspect", "--format", "{{json .State}}|{{.Image}}", self.name, check=False
        )
        if state.returncode == 0:
            raw_state, _, self.image_id = state.stdout.strip().partition("|")
            status = json.loads(raw_state)
            self._exit = int(status.get("ExitCode", self.process.returncode))
            if status.get("OOMKilled") or kernel_oom_killed(self.name):
                self.reason = OOM_REASON
        else:
            self._exit = self.process.returncode
        self.engine("rm", "--force", self.name, check=False)
        return self._exit

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM now, SIGKILL after ``timeout`` seconds (ECS's stopTimeout), without
        waiting: ``poll`` reports the exit code the container really ends with."""
        threading.Thread(
            target=self.engine,
            args=("stop", "--time", str(max(int(timeout), 0)), self.name),
            kwargs={"check": False},
            daemon=True,
        ).start()

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"container {self.name} still running after {timeout} s")
            time.sleep(0.2)
        return code


def main() -> None:
    """``make containers``: the base image and every model's image, timed."""
    from constructs_lib.image_build import MODELS_DIR, model_folders

    repo = Path(__file__).resolve().parents[1]
    engine = Engine.detect()
    started = time.perf_counter()
    base = engine.ensure_base()
    timings = {"base_s": round(time.perf_counter() - started, 1)}
    started = time.perf_counter()
    engine.ensure_base("3.12")
    timings["base_py312_s"] = round(time.perf_counter() - started, 1)
    for name in model_folders(repo / MODELS_DIR):
        started = time.perf_counter()
        image = engine.build(
            BuildSource.of(ImageBuild.model(name, repo / MODELS_DIR)), f"localhost/ml-model/{name}"
        )
        timings[name] = round(time.perf_counter() - started, 1)
        print(f"image {name}: {image[:19]} built in {timings[name]} s", flush=True)
    # The self-hosted Airflow image (its lock layer is the slow one; a job change only
    # rebuilds the manifest layer). The manifest of the last synth, if any.
    from constructs_lib.airflow_image import stage_airflow_image

    manifests = sorted((repo / "cdk.out" / "manifests").glob("*.json"), reverse=True)
    manifest = json.loads(manifests[0].read_text()) if manifests else {}
    started = time.perf_counter()
    image = engine.build(
        BuildSource(stage_airflow_image(manifest, version=AIRFLOW_VERSION)), AIRFLOW_IMAGE
    )
    timings["airflow"] = round(time.perf_counter() - started, 1)
    print(f"image airflow: {image[:19]} built in {timings['airflow']} s", flush=True)
    engine_name = " ".join(engine.command)
    print(f"containers: {engine_name}, base {base or 'from the Dockerfiles'} "
          f"({timings['base_s']} s); {json.dumps(timings)}")  # fmt: skip


if __name__ == "__main__":
    main()
