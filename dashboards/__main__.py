"""`python -m dashboards [--check] [--output FILE]`, from a checkout: write the dashboard built
in overview.py to monitor/assets/dashboards/rollout-overview.json, which the package ships (or
FILE), or, with --check, only say whether the file is up to date.

Exit codes: 0 written or up to date; 1 --check found the file out of date; 2 the build failed
(a name the project does not have, or grafana-foundation-sdk missing: it is in the `dev` extra,
never needed at run time).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from .render import render
except ImportError as error:  # grafana-foundation-sdk: a dev dependency, not a run-time one
    MISSING = str(error)
else:
    MISSING = ""

OUTPUT = Path(__file__).resolve().parent.parent / "monitor/assets/dashboards/rollout-overview.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards",
        description="Build the Grafana dashboard from dashboards/overview.py and write it to "
        "monitor/assets/dashboards/rollout-overview.json.",
        epilog="exit codes: 0 written or up to date, 1 out of date (--check), 2 build failed",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the file differs"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUTPUT,
        metavar="FILE",
        help="the file to write or check (default: the one the package ships)",
    )
    arguments = parser.parse_args(argv)
    output: Path = arguments.output
    if MISSING:
        print(f"python -m dashboards: {MISSING}: install the dev extra", file=sys.stderr)
        return 2
    try:
        text = render()
    except ValueError as error:
        print(f"python -m dashboards: {error}", file=sys.stderr)
        return 2
    try:
        if not arguments.check:
            output.write_text(text, encoding="utf-8")
        elif not output.is_file() or output.read_text(encoding="utf-8") != text:
            print(f"{output} is out of date: run python -m dashboards", file=sys.stderr)
            return 1
    except OSError as error:
        print(f"python -m dashboards: {output}: {error.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
