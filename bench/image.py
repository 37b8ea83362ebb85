"""The container image's size: built here as the tests build it, beside the Go exporters.

    .venv/bin/python bench/image.py                       # about 40 s; needs root
    .venv/bin/python bench/image.py --work /var/tmp/rm-image   # keep the base's tarball there

Builds the Containerfile with `scripts/build-image --debian-base` (buildah, vfs storage of its
own, the base made from Debian's packages with mmdebstrap: no registry is reachable here; as
tests/test_image.py builds it) and prints the base's size, the image's, what the monitor adds on
top of its base (the virtualenv), and the largest packages in that virtualenv. Beside them: the
binaries of postgres_exporter and blackbox_exporter (installed by bench/setup), which with a
busybox base of about 2 MiB are what their official images hold.

Target (bench/targets.py): what rollout-monitor adds on top of its base at most 40 MiB. The base
(Debian and its python3) is any Python image's, shared by every Python image on a node, and not
the project's to shrink; the layer on top is: the budget leaves room for a small dependency and
none for a heavy one (35.3 MiB in 2026-11, 9 MiB of it psycopg's bundled libpq and OpenSSL). The
two Go exporters' images together are shown beside it. Needs root, buildah, podman and
mmdebstrap (scripts/install-system-deps --tests); without them nothing is measured and the
target is missed. Exit 0 when the target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import Report, say
from targets import Targets

ROOT = Path(__file__).resolve().parent.parent
TAG = "localhost/rollout-monitor:bench"
GO_EXPORTERS = ("prometheus-postgres-exporter", "prometheus-blackbox-exporter")
MB = 1024 * 1024  # MiB: the tables' "MB" are mebibytes
ADDED_MIB = 40.0
BUSYBOX_MIB = 2.0  # the Go exporters' official images: the binary on busybox
TOOLS = ("buildah", "podman", "mmdebstrap")


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


def missing_tools() -> list[str]:
    """What the build needs and this machine lacks: root, buildah, podman, mmdebstrap."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return missing + ([] if os.geteuid() == 0 else ["root"])


@contextlib.contextmanager
def storage(work: Path | None) -> Iterator[tuple[Path, dict[str, str]]]:
    """A vfs storage and a build folder of the bench's own (the base's tarball kept in
    --work when given); (folder, environment). The temporary one goes at the end."""
    with tempfile.TemporaryDirectory(prefix="rm-image-") as temporary:
        folder = Path(temporary)
        (folder / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{folder}/storage"\nrunroot = "{folder}/run"\n'
        )
        # This kernel's cgroup layout refuses the default ulimits (tests/test_image.py).
        (folder / "containers.conf").write_text("[containers]\ndefault_ulimits = []\n")
        yield (
            folder,
            {
                **os.environ,
                "CONTAINERS_STORAGE_CONF": f"{folder}/storage.conf",
                "CONTAINERS_CONF": f"{folder}/containers.conf",
                "WORK": str(work or folder / "build"),
                "PYTHON": sys.executable,
            },
        )


def buildah(env: dict[str, str], *args: str) -> str:
    """buildah's output, stripped; raise when it fails."""
    return subprocess.run(
        ["buildah", *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def measure(work: Path | None) -> dict[str, Any]:
    """Build the base and the image; their sizes, the virtualenv's and its packages'."""
    with storage(work) as (_, env):
        say("building the base and the image (about a minute)")
        subprocess.run(
            [str(ROOT / "scripts" / "build-image"), "--debian-base", TAG], env=env, check=True
        )
        try:
            base = image_size(env, "localhost/rollout-monitor-base:bookworm")
            image = image_size(env, TAG)
            rootfs = Path(buildah(env, "mount", buildah(env, "from", "--quiet", TAG)))
            venv = rootfs / "opt" / "rollout-monitor"
            site = next(venv.glob("lib/python3*/site-packages"))
            packages = sorted(
                ((p.name, tree_size(p)) for p in site.iterdir() if p.is_dir()),
                key=lambda item: -item[1],
            )
            venv_size = tree_size(venv)
        finally:
            subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, check=False)
            subprocess.run(["buildah", "rmi", "--all"], env=env, capture_output=True, check=False)
    return {
        "base_bytes": base,
        "image_bytes": image,
        "added_bytes": image - base,
        "venv_bytes": venv_size,
        "packages": dict(packages),
    }


def go_exporters() -> dict[str, float | None]:
    """The Go exporters' binaries, MiB (None when not installed)."""
    found: dict[str, float | None] = {}
    for name in GO_EXPORTERS:
        path = shutil.which(name)
        found[name] = None if path is None else Path(path).stat().st_size / MB
    return found


def main() -> int:
    """Build, print the sizes, judge what the project adds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="keep the base's tarball and wheels here")
    args = parser.parse_args()
    targets = Targets()
    report = Report("image", None)
    go = go_exporters()
    theirs = sum(size + BUSYBOX_MIB for size in go.values() if size is not None)
    try:
        if missing := missing_tools():  # in CI a failure: the target reported unmeasured
            say(f"cannot build the image without: {', '.join(missing)}")
            targets.at_most("added by rollout-monitor on top of its base", None, ADDED_MIB, "MiB")
            return targets.finish(report)
        sizes = measure(args.work)
        report.data.update(sizes, go_binaries_mb=go)
        print_sizes(report, sizes, go)
        added = sizes["added_bytes"] / MB
        ratio = "no exporter installed"
        if theirs:
            ratio = f"{added / theirs:.2f}x the two exporters' images, {theirs:.1f} MiB"
        targets.at_most(
            "added by rollout-monitor on top of its base",
            added,
            ADDED_MIB,
            "MiB",
            shown=f"{added:.1f} MiB ({ratio})",
        )
        return targets.finish(report)
    finally:
        report.save()
        say(f"figures: {report.path}")


def print_sizes(report: Report, sizes: dict[str, Any], go: dict[str, float | None]) -> None:
    """The image's tables: the layers, the largest packages, the Go exporters beside them."""
    report.table(
        "The image (uncompressed, as podman counts it; MiB)",
        ["what", "MiB"],
        [
            ["base (Debian bookworm minbase + python3, python3-venv)", sizes["base_bytes"] / MB],
            ["rollout-monitor image", sizes["image_bytes"] / MB],
            ["added by rollout-monitor", sizes["added_bytes"] / MB],
            ["of which the virtualenv /opt/rollout-monitor", sizes["venv_bytes"] / MB],
        ],
    )
    report.table(
        "The virtualenv's largest packages",
        ["package", "MiB"],
        [[name, size / MB] for name, size in list(sizes["packages"].items())[:8]],
    )
    report.table(
        "What the Go exporters' images hold (the binary, on a ~2 MiB busybox)",
        ["binary", "MiB"],
        [[name, "-" if size is None else size] for name, size in go.items()],
    )


if __name__ == "__main__":
    raise SystemExit(main())
