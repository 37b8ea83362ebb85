"""The words a statement's analysis is written in: the objects a migration creates, the
questions only the database can answer, and the analysis itself; and the few helpers every
statement's reading shares (a relation's name, a walk of the parse tree)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from pglast import ast

from monitor.lockplan.modes import strongest

AE, SRE, SHARE = "AccessExclusiveLock", "ShareRowExclusiveLock", "ShareLock"
SUE, RE, RS, AS = "ShareUpdateExclusiveLock", "RowExclusiveLock", "RowShareLock", "AccessShareLock"
# Functions a column default may call that are volatile (pg_proc.provolatile = 'v'): the value
# differs per row, so ADD COLUMN ... DEFAULT f() writes every row anew (a rewrite).
VOLATILE = frozenset(
    {
        "random",
        "random_normal",
        "clock_timestamp",
        "timeofday",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "nextval",
        "setval",
        "txid_current",
        "pg_current_xact_id",
    }
)
# Defaults known stable or immutable: evaluated once, stored as the "missing" value (no rewrite).
STABLE = frozenset({"now", "current_timestamp", "statement_timestamp", "transaction_timestamp"})
# Storage parameters ALTER TABLE SET changes under SHARE UPDATE EXCLUSIVE (the others need
# ACCESS EXCLUSIVE): fillfactor, the toast and autovacuum ones, parallel_workers.
LIGHT_OPTIONS = ("fillfactor", "autovacuum_", "toast.", "toast_tuple_target", "parallel_workers")
SERIAL = frozenset({"serial", "serial4", "serial8", "bigserial", "smallserial", "serial2"})


@dataclass(frozen=True)
class DbObject:
    """An object a migration creates: columns are `table.column`, the others by their name."""

    kind: str  # column, index, trigger, function, table, constraint
    name: str
    table: str | None = None  # of a trigger, an index, a constraint
    # What a later statement may ask of it: a column's type, a foreign key's referenced table.
    detail: str = field(default="", compare=False)


@dataclass(frozen=True)
class Question:
    """Something only the database knows, asked about one statement (monitor.lockplan.facts):
    `what` is column_type, constraint_table, index_table or volatile; `about` its subject."""

    what: str
    about: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    """What one statement does, as far as its text tells."""

    kind: str  # e.g. ALTER TABLE, CREATE INDEX, UPDATE
    locks: dict[str, str] = field(default_factory=dict)  # relation -> the strongest mode
    rewrites: tuple[str, ...] = ()  # tables written anew (a new relfilenode)
    scans: tuple[str, ...] = ()  # tables read in full while locked (a check, an index build)
    creates: tuple[DbObject, ...] = ()
    outside_transaction: bool = False  # cannot run inside a transaction block
    transaction: str | None = None  # begin, commit or rollback (transaction control)
    settings: tuple[tuple[str, str], ...] = ()  # SET name = value
    writes_rows: tuple[str, ...] = ()  # tables whose rows it changes (an UPDATE backfill)
    questions: tuple[Question, ...] = ()  # what the database would tell (else assumed worst)
    notes: tuple[str, ...] = ()  # what the plan assumed, and why

    def merged(self, other: Analysis) -> Analysis:
        """Both analyses as one statement's (an ALTER TABLE of several commands)."""
        locks = dict(self.locks)
        for table, mode in other.locks.items():
            locks[table] = strongest([mode, locks.get(table, mode)])
        return replace(
            self,
            locks=locks,
            rewrites=_unique(self.rewrites + other.rewrites),
            scans=_unique(self.scans + other.scans),
            creates=self.creates + other.creates,
            outside_transaction=self.outside_transaction or other.outside_transaction,
            writes_rows=_unique(self.writes_rows + other.writes_rows),
            questions=self.questions + other.questions,
            notes=self.notes + other.notes,
        )


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def relation(node: Any) -> str:
    """A RangeVar as the plan names it: `name`, or `schema.name` when written so."""
    return f"{node.schemaname}.{node.relname}" if node.schemaname else str(node.relname)


def function_names(node: Any) -> Iterator[str]:
    """The names of the functions an expression calls (their last name part)."""
    for found in walk(node):
        if isinstance(found, ast.FuncCall):
            yield str(found.funcname[-1].sval).lower()


def type_text(type_name: ast.TypeName) -> str:
    """A type as format_type writes it: varchar(20), numeric(12,2), timestamptz."""
    base = str(type_name.names[-1].sval)
    mods = [str(m.val.ival) for m in type_name.typmods or () if isinstance(m, ast.A_Const)]
    return f"{base}({','.join(mods)})" if mods else base


def walk(node: Any) -> Iterator[Any]:
    """Every node under this one (the node itself included), depth first."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for name in node:  # pglast nodes iterate over their attribute names
        yield from walk(getattr(node, name))
