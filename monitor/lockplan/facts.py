"""What the database says that the SQL cannot: each table's size and recent traffic, the
sessions that would block each planned lock now, who holds Prisma Migrate's lock, the session's
TimeZone, and the answers to the statements' questions (a column's type, a constraint's kind and
table, an index's table, a function's volatility). Gathered read-only by monitor.db.catalog."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.lockplan.analysis import Question
from monitor.lockplan.modes import spoken


@dataclass(frozen=True)
class TableFacts:
    """One table: its rows (the planner's estimate) and size, and the app's operations on it a
    second (scans and rows written; None when not sampled)."""

    rows: float
    bytes: int
    per_second: float | None = None


@dataclass(frozen=True)
class Blocker:
    """A session that holds (or waits for, ahead of the migration) a lock conflicting with one
    the migration needs."""

    pid: int
    state: str
    transaction_seconds: float | None
    table: str
    mode: str
    granted: bool = True
    application_name: str = ""

    def words(self) -> str:
        """The session in words: backend 4321 (idle in transaction, transaction 612 s old)
        holds ACCESS SHARE on users."""
        seconds = self.transaction_seconds
        age = "" if seconds is None else f", transaction {seconds:.0f} s old"
        holds = "holds" if self.granted else "waits for"
        state = self.state or "unknown state"
        return f"backend {self.pid} ({state}{age}) {holds} {spoken(self.mode)} on {self.table}"


@dataclass(frozen=True)
class Facts:
    """Everything read from the database for one plan."""

    tables: dict[str, TableFacts] = field(default_factory=dict)
    blockers: tuple[Blocker, ...] = ()
    prisma_lock: Blocker | None = None  # a session holding Prisma Migrate's advisory lock
    timezone: str = ""
    answers: dict[Question, tuple[str, ...]] = field(default_factory=dict)


# format_type's names -> the parser's, so that "character varying(20)" meets "varchar(20)".
TYPE_NAMES = {
    "character varying": "varchar",
    "character": "bpchar",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "boolean": "bool",
    "double precision": "float8",
    "real": "float4",
    "bit varying": "varbit",
}
# Conversions that keep every stored value as it is (binary coercible, or a wider modifier).
FREE = {
    ("varchar", "text"),
    ("text", "varchar"),
    ("cidr", "inet"),
    ("xml", "text"),
}
WIDENING = frozenset({"varchar", "numeric", "varbit", "timestamp", "timestamptz", "time"})


def split_type(text: str) -> tuple[str, tuple[int, ...]]:
    """format_type's or the parser's spelling -> (name, modifiers): numeric(12,2) ->
    ('numeric', (12, 2)); timestamp(3) without time zone -> ('timestamp', (3,))."""
    name, _, rest = text.partition("(")
    mods, _, tail = rest.partition(")")
    base = " ".join(f"{name} {tail}".split()).lower()
    numbers = tuple(int(m) for m in mods.split(",") if m.strip().isdigit())
    return TYPE_NAMES.get(base, base), numbers


def rewrites_type(old: str, new: str, timezone: str) -> bool:
    """Whether ALTER COLUMN TYPE from old to new (no USING) writes every row anew."""
    (old_name, old_mods), (new_name, new_mods) = split_type(old), split_type(new)
    if {old_name, new_name} == {"timestamp", "timestamptz"}:
        return timezone.upper() not in ("UTC", "ETC/UTC", "GMT", "UCT", "ZULU")
    if old_name != new_name:
        return (old_name, new_name) not in FREE or bool(new_mods)
    if old_mods == new_mods or not new_mods:
        return False
    return not (old_name in WIDENING and widens(old_mods, new_mods))


def widens(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    """numeric(p,s) -> (p' >= p, same s); varchar(n) -> (m >= n); precision p -> p' >= p."""
    if not old:  # unconstrained to constrained: values must be checked
        return False
    return new[0] >= old[0] and new[1:] == old[1:]
