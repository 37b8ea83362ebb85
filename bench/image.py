"""The container image's size: built here as the tests build it, beside the Go exporters.

    .venv/bin/python bench/image.py

Builds the Containerfile with `scripts/build-image --debian-base` (buildah, vfs storage of its
own, the base made from Debian's packages with mmdebstrap: no registry is reachable here) and
prints the base's size, the image's, what the monitor adds on top of its base (the virtualenv),
and the largest packages in that virtualenv. Beside them: the binaries of postgres_exporter and
blackbox_exporter (installed by bench/setup), which with a busybox base of about 2 MB are what
their official images hold.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import Report, say

ROOT = Path(__file__).resolve().parent.parent
TAG = "localhost/rollout-monitor:bench"
GO_EXPORTERS = ("prometheus-postgres-exporter", "prometheus-blackbox-exporter")
MB = 1024 * 1024


def tree_size(path: Path) -> int:
    """Bytes of the regular files under path."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def image_size(env: dict[str, str], name: str) -> int:
    """The image's size as podman reports it (the sum of its layers, uncompressed)."""
    out = subprocess.run(
        ["podman", "image", "inspect", name], env=env, capture_output=True, text=True, check=True
    ).stdout
    size: int = json.loads(out)[0]["Size"]
    return size


def main() -> None:
    report = Report("image", None)
    with tempfile.TemporaryDirectory(prefix="rm-image-") as work:
        (Path(work) / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{work}/storage"\nrunroot = "{work}/run"\n'
        )
        (Path(work) / "containers.conf").write_text("[containers]\ndefault_ulimits = []\n")
        env = {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": f"{work}/storage.conf",
            "CONTAINERS_CONF": f"{work}/containers.conf",
            "WORK": f"{work}/build",
            "PYTHON": sys.executable,
        }
        say("building the base and the image (about a minute)")
        subprocess.run(
            [str(ROOT / "scripts" / "build-image"), "--debian-base", TAG], env=env, check=True
        )
        base = image_size(env, "localhost/rollout-monitor-base:bookworm")
        image = image_size(env, TAG)
        container = subprocess.run(
            ["buildah", "from", "--quiet", TAG], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        rootfs = Path(
            subprocess.run(
                ["buildah", "mount", container], env=env, capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        venv = rootfs / "opt" / "rollout-monitor"
        site = next(venv.glob("lib/python3*/site-packages"))
        packages = sorted(
            ((p.name, tree_size(p)) for p in site.iterdir() if p.is_dir()),
            key=lambda item: -item[1],
        )
        venv_size = tree_size(venv)
        subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", "--all"], env=env, capture_output=True, check=False)
    go: list[list[Any]] = []
    for name in GO_EXPORTERS:
        path = shutil.which(name)
        go.append([name, "-" if path is None else Path(path).stat().st_size / MB])
    report.data.update(
        base_bytes=base,
        image_bytes=image,
        added_bytes=image - base,
        venv_bytes=venv_size,
        packages=dict(packages),
        go_binaries_mb={row[0]: row[1] for row in go},
    )
    report.table(
        "The image (uncompressed, as podman counts it)",
        ["what", "MB"],
        [
            ["base (Debian bookworm minbase + python3, python3-venv)", base / MB],
            ["rollout-monitor image", image / MB],
            ["added by rollout-monitor", (image - base) / MB],
            ["of which the virtualenv /opt/rollout-monitor", venv_size / MB],
        ],
    )
    report.table(
        "The virtualenv's largest packages",
        ["package", "MB"],
        [[name, size / MB] for name, size in packages[:8]],
    )
    report.table(
        "What the Go exporters' images hold (the binary, on a ~2 MB busybox)", ["binary", "MB"], go
    )
    report.save()
    say(f"figures: {report.path}")


if __name__ == "__main__":
    main()
