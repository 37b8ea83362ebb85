"""The container image (issue 12, item 2): built from the Containerfile by real buildah on a base
made from Debian's packages (no registry is reachable here), then run inside, as its numeric
non-root user, against the suite's PostgreSQL (chroot isolation shares the host's network)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from callback_servers import answering_server
from databases import FreshDatabase

from monitor.demo.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
TAG = "localhost/rollout-monitor:test"
USER = "65532:65532"
STATE = "/var/lib/rollout-monitor"
TOOLS = ("buildah", "podman", "mmdebstrap")


@dataclass
class Image:
    """A built image and a working container of it, in a storage of the test's own."""

    env: dict[str, str]
    container: str
    rootfs: Path

    def run(
        self, *command: str, volumes: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*command, volumes=volumes, env=env or {}),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def command(self, *command: str, volumes: tuple[str, ...], env: dict[str, str]) -> list[str]:
        """buildah run as the image's user, entrypoint and all."""
        flags = [f"--volume={volume}" for volume in volumes]
        flags += [f"--env={name}={value}" for name, value in env.items()]
        return [
            "buildah",
            "run",
            "--isolation=chroot",
            f"--user={USER}",
            *flags,
            self.container,
            "--",
            "rollout-monitor",
            *command,
        ]

    def config(self) -> dict[str, object]:
        """The image's OCI configuration."""
        out = subprocess.run(
            ["buildah", "inspect", "--type=image", TAG],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found: dict[str, object] = json.loads(out)["OCIv1"]["config"]
        return found


def tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (scripts/install-system-deps --tests)")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    tools()
    work = tmp_path_factory.mktemp("image")
    (work / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{work}/storage"\nrunroot = "{work}/run"\n'
    )
    # This kernel's cgroup layout refuses the default ulimits; chroot isolation needs no runtime.
    (work / "containers.conf").write_text("[containers]\ndefault_ulimits = []\n")
    env = {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"),
        "CONTAINERS_CONF": str(work / "containers.conf"),
        "WORK": str(work / "build"),
        "PYTHON": os.environ.get("PYTHON", sys.executable),
    }
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-image"), "--debian-base", TAG],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]

    def buildah(*args: str) -> str:
        return subprocess.run(
            ["buildah", *args], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    container = buildah("from", "--quiet", TAG)
    # `buildah run` mounts its own copy of an image's VOLUME, in some runs over the --volume
    # given for the same path (2 of 14 runs here): the state file then went to buildah's copy
    # (under its storage's buildah-volumes/). Docker, podman and Kubernetes mount the given
    # volume; so does `buildah run` once the working container declares none. The image's own
    # VOLUME is read from the image, not this container
    # (test_the_image_runs_as_a_numeric_user_on_9838_with_labels).
    buildah("config", f"--volume={STATE}-", container)
    rootfs = Path(buildah("mount", container))
    try:
        yield Image(env, container, rootfs)
    finally:
        subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", "--all"], env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def git_revision() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_version_inside_the_image_names_this_revision(image: Image) -> None:
    result = image.run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"rollout-monitor 0.1.0 (revision {git_revision()}, Python 3.")


def test_the_image_runs_as_a_numeric_user_on_9838_with_labels(image: Image) -> None:
    config = image.config()
    assert config["User"] == USER
    assert config["Entrypoint"] == ["rollout-monitor"]
    assert config["Cmd"] == ["run"]
    assert "ROLLOUT_LISTEN_ADDRESS=0.0.0.0:9838" in config["Env"]  # type: ignore[operator]
    assert config["ExposedPorts"] == {"9838/tcp": {}}
    assert config["Volumes"] == {STATE: {}}
    labels = config["Labels"]
    assert isinstance(labels, dict)
    assert labels["org.opencontainers.image.title"] == "rollout-monitor"
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == git_revision()


def test_the_final_stage_has_no_pip_and_no_compiler(image: Image) -> None:
    found = sorted(
        str(path.relative_to(image.rootfs))
        for pattern in ("usr/bin/*", "usr/local/bin/*", "opt/rollout-monitor/bin/*")
        for path in image.rootfs.glob(pattern)
        if path.name.startswith(("pip", "gcc", "g++", "clang"))
        or path.name in {"cc", "c++", "ld", "as", "make"}
    )
    assert found == []
    sites = list(image.rootfs.glob("**/site-packages/pip")) + list(
        image.rootfs.glob("**/dist-packages/pip")
    )
    assert sites == []


def test_check_config_inside_the_image(image: Image, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the image's user reads the folder mounted from here
    (tmp_path / "good.yaml").write_text("checks:\n  drift:\n    interval: 1m\n")
    (tmp_path / "bad.yaml").write_text("checks:\n  drift:\n    interval: soon\n")
    volumes = (f"{tmp_path}:/etc/rollout-monitor:ro",)
    good = image.run(
        "check-config",
        "--config=/etc/rollout-monitor/good.yaml",
        volumes=volumes,
        env={"DATABASE_URL": "postgresql://monitor@db.internal/app"},
    )
    assert (good.returncode, good.stderr) == (0, ""), good.stdout + good.stderr
    bad = image.run(
        "check-config",
        "--config=/etc/rollout-monitor/bad.yaml",
        volumes=volumes,
        env={"DATABASE_URL": "postgresql://monitor@db.internal/app"},
    )
    assert bad.returncode == 2
    assert "checks.drift.interval" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_once_inside_the_image_against_the_suites_database(
    image: Image, fresh_db: FreshDatabase
) -> None:
    with answering_server(401) as app:
        result = image.run(
            "once", env={"DATABASE_URL": fresh_db.url, "ROLLOUT_CALLBACK_URL": app.url}
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rollout_postgres_up 1.0" in result.stdout
    assert 'rollout_migration_state{state="pending"} 1.0' in result.stdout
    assert f'revision="{git_revision()}"' in result.stdout


def descendant(pid: int, name: str) -> int:
    """The process under `pid` whose command line mentions `name` (the host sees chroot's)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(stat.parent.name)] = (int(fields[1]), cmdline)
    for child, (parent, cmdline) in parents.items():
        ancestor = parent
        while ancestor not in {pid, 0, 1} and ancestor in parents:
            ancestor = parents[ancestor][0]
        if ancestor == pid and name.encode() in cmdline and b"buildah" not in cmdline:
            return child
    raise AssertionError(f"no process {name} under {pid}")


def snapshot(rootfs: Path) -> dict[str, tuple[float, int]]:
    """Every path under the container's root filesystem with its mtime and size."""
    seen = {}
    for folder, dirs, files in os.walk(rootfs):
        dirs[:] = [d for d in dirs if not (folder == str(rootfs) and d in {"proc", "sys", "dev"})]
        for name in dirs + files:
            path = Path(folder) / name
            stat = path.lstat()
            seen[str(path.relative_to(rootfs))] = (stat.st_mtime, stat.st_size)
    return seen


def test_the_daemon_writes_only_its_state_volume(
    image: Image, fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """A read-only root filesystem works: a whole run, from start to SIGTERM, changes nothing in
    the image's filesystem, /tmp included; the state file lands on the mounted volume."""
    tmp_path.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 65532, 65532)
    config = tmp_path / "etc"
    config.mkdir()
    (config / "config.yaml").write_text(
        yaml.safe_dump({"baseline": {"state_file": f"{STATE}/baseline.json"}})
    )
    volumes = (f"{state}:{STATE}", f"{config}:/etc/rollout-monitor:ro")
    # buildah makes the volumes' mount points in the image at the first run that names them.
    assert image.run("--version", volumes=volumes).returncode == 0
    before = snapshot(image.rootfs)
    address = f"127.0.0.1:{free_port()}"
    with answering_server(401) as app:
        process = subprocess.Popen(
            image.command(
                "run",
                "--config=/etc/rollout-monitor/config.yaml",
                volumes=volumes,
                env={
                    "DATABASE_URL": fresh_db.url,
                    "ROLLOUT_CALLBACK_URL": app.url,
                    "ROLLOUT_LISTEN_ADDRESS": address,
                },
            ),
            env=image.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            body = ""
            while time.monotonic() < deadline and "rollout_postgres_up 1.0" not in body:
                time.sleep(0.2)
                try:
                    body = httpx.get(f"http://{address}/metrics", timeout=2).text
                except httpx.TransportError:
                    continue
            assert "rollout_postgres_up 1.0" in body
            assert httpx.get(f"http://{address}/readyz", timeout=2).status_code in {200, 503}
            # The baseline learns from the first probe after the schema check and saves it
            # then: the state file lands on the volume while the daemon runs.
            while time.monotonic() < deadline and not (state / "baseline.json").exists():
                time.sleep(0.2)
            # buildah answers a SIGTERM with SIGKILL to the command: the monitor gets it direct,
            # as from a container runtime.
            os.kill(descendant(process.pid, "rollout-monitor"), signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, stderr[-2000:]
    after = snapshot(image.rootfs)
    changed = sorted(
        path for path in set(before) | set(after) if before.get(path) != after.get(path)
    )
    # buildah itself makes and removes its mount points under /run at each `buildah run`.
    assert [path for path in changed if path != "run"] == []
    assert (state / "baseline.json").exists(), stderr.decode(errors="replace")[-4000:]
    assert (state / "baseline.json").stat().st_uid == 65532
    assert json.loads((state / "baseline.json").read_text())["migration"]
