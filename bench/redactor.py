"""How long the secret redactor takes on hostile text: linear in its input, never quadratic.

    .venv/bin/python bench/redactor.py [--size 1000000] [--repeat 3]

No database, no network: it hands monitor.output.redact.Redactor (with two configured secrets, as
`verdict` and the daemon build it) texts written to make a backtracking regex work hard, each at
--size characters and at an eighth of it, and takes the fastest of --repeat runs:

    letters          one word of letters: a URL scheme that never reaches its "://"
    schemes          "a://" over and over: every scheme reaching a user info without an "@"
    user infos       "a://b:" over and over: a user and a password that never end in an "@"
    quoted values    "password='x " over and over: quoted values closed only by the next one
    addresses        "a.b-c+d" with no "@": the start of an e-mail address, never ended
    domains          "a@b" then ".c" over and over: an address whose domain never ends
    query keys       "?token=" over and over, and "&password=" ones
    secret prefixes  the configured secret cut by one character, over and over
    error message    "error: " then one long word, as the 100 KB message of issue 22

Targets (bench/targets.py): every text of --size characters (1 MB by default) redacted in at most
500 ms, and time(size) / time(size / 8) at most 12 for each (8 for a linear redactor, with room
for a busy machine; a quadratic one gives 64). Exit status 0 when every target is met, 1
otherwise. The redactor before issue 22 took 0.54 s for 10 KB of letters, 8.6 s for 40 KB.
Prints to stdout only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for folder in (BENCH.parent, BENCH):  # the repository (monitor) and bench/ (targets)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from targets import Targets  # noqa: E402

from monitor.output.redact import Redactor  # noqa: E402

DEFAULT_SIZE = 1_000_000
MAX_MILLISECONDS = 500.0
MAX_RATIO = 12.0  # time(8n) / time(n): 8 when linear, 64 when quadratic (room for noise)
SECRET = "s3cret-pw"  # noqa: S105  # a configured secret to look for, not a credential


def repeated(unit: str, head: str = "") -> Callable[[int], str]:
    """A text of n characters: the head, then the unit over and over."""

    def make(n: int) -> str:
        return (head + unit * (n // len(unit) + 1))[:n]

    return make


TEXTS: dict[str, Callable[[int], str]] = {
    "letters": repeated("a"),
    "schemes": repeated("a://"),
    "user infos": repeated("a://b:"),
    "quoted values": repeated("password='x "),
    "addresses": repeated("a.b-c+d"),
    "domains": repeated(".c", "a@b"),
    "query keys": repeated("?token=&password="),
    "secret prefixes": repeated(SECRET[:-1]),
    "error message": lambda n: ("error: " + "x" * n)[:n],
}


def fastest(redact: Redactor, text: str, repeat: int) -> float:
    """The fastest of `repeat` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        redact(text)
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main() -> int:
    """Every text at --size and an eighth of it, then the targets; 0 when every target holds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=DEFAULT_SIZE, help=f"characters ({DEFAULT_SIZE})"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the fastest (3)")
    args = parser.parse_args()
    targets = Targets()
    redact = Redactor([SECRET, "Bearer abc.def"])
    small = max(args.size // 8, 1)
    print(f"| text | {small:,} chars, ms | {args.size:,} chars, ms | ratio |")
    print("|---|---|---|---|")
    figures = {}
    for name, make in TEXTS.items():
        little = fastest(redact, make(small), args.repeat)
        large = fastest(redact, make(args.size), args.repeat)
        figures[name] = (large, large / little if little > 0 else float("nan"))
        print(f"| {name} | {little:.2f} | {large:.2f} | {figures[name][1]:.1f} |")
    for name, (large, ratio) in figures.items():
        targets.at_most(f"{name}: {args.size:,} chars", large, MAX_MILLISECONDS, "ms")
        targets.at_most(f"{name}: time(8n) / time(n)", ratio, MAX_RATIO, digits=1)
    return targets.finish(title=f"Targets ({args.size:,} characters)")


if __name__ == "__main__":
    raise SystemExit(main())
