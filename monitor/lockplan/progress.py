"""Where a running migration is, told from outside its session: Prisma sends the whole file as
one query, so pg_stat_activity shows the script, not the statement, and the session's catalog
changes are invisible to others until it commits. What others can see is the locks it holds and
waits for (pg_locks) and the index it is building (pg_stat_progress_create_index); with the plan
(which statement asks for which lock, in which order) that places it:

- waiting for a lock: the first statement that asks for that lock and does not hold it yet;
- building an index on a table: a CREATE INDEX on that table. Which one, when several build
  on the same table, is told by the relations the session has created so far (each holds an
  ACCESS EXCLUSIVE lock on its own, uncommitted, relation; the newest is the index being built):
  the CREATE INDEX whose place in the file accounts for that many, and the next one each time
  the newest relation changes;
- otherwise: at least the last statement whose lock it holds (a lock a statement is the first
  to take), and never before where it was seen last.

Two statements that take the same locks and build nothing cannot be told apart (001's second
ADD COLUMN on users from its first, its fourth and fifth from its third, its CREATE FUNCTION,
which locks no table): the place is then the earliest that fits, and moves on as later
statements show themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.lockplan.plan import Planned


@dataclass(frozen=True)
class Seen:
    """The migration's session at one look."""

    held: frozenset[tuple[str, str]]  # (table, mode) granted, tables others can see
    waiting: tuple[str, str] | None = None  # (table, mode) asked for and not granted
    building: str | None = None  # the table an index is being built on
    created: int = 0  # relations the session created (locked, invisible to others)
    newest: int | None = None  # the newest of them (the OID of the index being built)


@dataclass(frozen=True)
class Place:
    """Where the migration is: the statement it runs or waits on (1-based), and the index it
    was building there (its OID), to tell the next build from this one."""

    statement: int
    index_oid: int | None = None


def first_takers(statements: Sequence[Planned]) -> dict[tuple[str, str], int]:
    """Each (table, mode) and the first statement that takes it."""
    found: dict[tuple[str, str], int] = {}
    for planned in statements:
        for lock in planned.locks:
            found.setdefault(lock, planned.index)
    return found


def locate(statements: Sequence[Planned], seen: Seen, before: Place | None = None) -> Place:
    """The statement the migration runs or waits on now (never before `before`, a look at the
    same run)."""
    takers = first_takers(statements)
    floor = max([takers.get(lock, 1) for lock in seen.held] + [1])
    if before is not None:
        floor = max(floor, before.statement)
    if seen.waiting is not None:
        asked = [s.index for s in statements if seen.waiting in s.locks and s.index >= floor]
        return Place(asked[0] if asked else floor)
    if seen.building is not None:
        return building(statements, seen, floor, before)
    return Place(floor)


def building(statements: Sequence[Planned], seen: Seen, floor: int, before: Place | None) -> Place:
    """The CREATE INDEX on the table being built: the one seen before while the newest
    relation is the same, the next one once it changes, and at a first look the one that
    accounts for the relations created so far."""
    newest = seen.newest
    builds = [
        s.index
        for s in statements
        if s.kind == "CREATE INDEX"
        and any(t == seen.building for t, _ in s.locks)
        and s.index >= floor
    ]
    if not builds:
        return Place(floor, newest)
    if before is not None and before.index_oid is not None:
        if before.index_oid == newest:
            return Place(builds[0], newest)
        later = [index for index in builds if index > before.statement]
        return Place(later[0] if later else builds[-1], newest)
    return Place(counted(statements, builds, seen.created), newest)


def counted(statements: Sequence[Planned], builds: list[int], created: int) -> int:
    """Of these CREATE INDEX statements, the one building the `created`-th new relation: each
    index and table the plan creates is one, and a statement that may make more than it
    names (a CREATE TABLE's TOAST table, sequences and key index) leaves only a lower bound,
    where the earliest that fits is taken."""
    exact, known = True, 0
    fits = []
    for statement in statements:
        fit = known + 1 == created if exact else known + 1 <= created
        if statement.index in builds and fit:
            fits.append(statement.index)
        known += sum(1 for c in statement.creates if c.kind in ("index", "table"))
        exact = exact and not makes_more(statement)
    return fits[0] if fits else builds[0]


def makes_more(statement: Planned) -> bool:
    """Whether the statement may create relations its plan does not name."""
    named_indexes = sum(1 for c in statement.creates if c.kind == "index")
    return statement.kind == "CREATE TABLE" or (
        statement.kind != "CREATE INDEX" and bool(statement.scans) and not named_indexes
    )
