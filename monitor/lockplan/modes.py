"""PostgreSQL's table lock modes, as pg_locks names them, and which of them conflict
(the table "Conflicting Lock Modes" of the PostgreSQL manual, 15 to 17)."""

from __future__ import annotations

from collections.abc import Iterable

# Weakest to strongest: each mode conflicts with every mode the one before it conflicts with.
MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_CONFLICTS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": {
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ShareUpdateExclusiveLock": {
        "ShareUpdateExclusiveLock",
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ShareLock": {
        "RowExclusiveLock",
        "ShareUpdateExclusiveLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ShareRowExclusiveLock": {
        "RowExclusiveLock",
        "ShareUpdateExclusiveLock",
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ExclusiveLock": set(MODES) - {"AccessShareLock"},
    "AccessExclusiveLock": set(MODES),
}
CONFLICTS = {mode: frozenset(others) for mode, others in _CONFLICTS.items()}
# What the app's queries take: reads, SELECT ... FOR UPDATE, writes.
APP_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock")


def conflicts(held: str, wanted: str) -> bool:
    """Whether a session holding `held` makes one asking for `wanted` wait (symmetric)."""
    return wanted in CONFLICTS[held]


def strongest(modes: Iterable[str]) -> str:
    """The strongest of these modes (the one a statement takes when it needs several)."""
    return max(modes, key=MODES.index)


def blocks_app(mode: str) -> tuple[str, ...]:
    """Which of the app's reads, locking reads and writes this mode makes wait."""
    return tuple(app for app in APP_MODES if conflicts(mode, app))


def spoken(mode: str) -> str:
    """The mode as the manual writes it: ACCESS EXCLUSIVE, SHARE ROW EXCLUSIVE, ..."""
    words, word = [], ""
    for char in mode.removesuffix("Lock"):
        if char.isupper() and word:
            words.append(word)
            word = ""
        word += char
    return " ".join([*words, word]).upper()


def blocked_words(mode: str) -> str:
    """What of the app's work this mode makes wait, in words: 'writes', 'reads and writes'."""
    blocked = blocks_app(mode)
    if "AccessShareLock" in blocked:
        return "reads and writes"
    if "RowShareLock" in blocked:
        return "locking reads and writes"
    return "writes" if blocked else "nothing"
