"""A migration's lock plan: per statement the tables it locks and in which mode, what it
rewrites, how long it holds them, its risk and the advice that removes it; for the file whether
it runs as one transaction and sets lock_timeout and statement_timeout; with a database, who would
block each lock now; and whether the whole is safe or risky.

Prisma Migrate sends a migration.sql as one query, which PostgreSQL runs as one implicit
transaction unless the file has transaction control of its own: every lock is then held until
the last statement. Risky: a live blocker, Prisma's own lock held by another session, a statement
that cannot run inside that transaction, or a rewrite or an ACCESS EXCLUSIVE lock on a table
with rows without a lock_timeout set before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from monitor.lockplan.analysis import AE, Analysis, DbObject, Question
from monitor.lockplan.facts import Blocker, Facts, rewrites_type
from monitor.lockplan.modes import blocked_words, blocks_app, conflicts, spoken, strongest
from monitor.lockplan.reading import Statement, read_statements


@dataclass(frozen=True)
class Planned:
    """One statement of the plan."""

    index: int
    line: int
    text: str
    kind: str
    locks: tuple[tuple[str, str], ...]  # (table, mode), in the order the statement names them
    rewrites: tuple[str, ...]
    scans: tuple[str, ...]
    outside_transaction: bool
    held_to: int  # the statement whose end releases its locks (its transaction's last)
    risks: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    risky: bool = False
    notes: tuple[str, ...] = ()
    creates: tuple[DbObject, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The whole migration's plan."""

    migration: str
    in_transaction: bool
    sets_lock_timeout: bool
    sets_statement_timeout: bool
    statements: tuple[Planned, ...]
    objects: tuple[DbObject, ...]
    facts: Facts | None = None
    problems: tuple[str, ...] = field(default=())  # file-wide risks

    def with_problem(self, problem: str) -> Plan:
        """The plan with one more file-wide problem (a database that could not be asked)."""
        return replace(self, problems=(*self.problems, problem))

    @property
    def blockers(self) -> tuple[Blocker, ...]:
        """The sessions that would block a planned lock now (with a database)."""
        return () if self.facts is None else self.facts.blockers

    def first_to_wait(self, blocker: Blocker) -> Planned | None:
        """The first statement that would wait for the blocker: one that locks its table in a
        mode conflicting with the blocker's."""
        for planned in self.statements:
            for table, mode in planned.locks:
                if table.split(".")[-1] == blocker.table and conflicts(blocker.mode, mode):
                    return planned
        return None

    @property
    def result(self) -> str:
        """safe or risky."""
        risky = self.problems or self.blockers or any(s.risky for s in self.statements)
        return "risky" if risky else "safe"


def read_plan(migration: str, sql: str, facts: Facts | None = None) -> Plan:
    """The plan of a migration's SQL (SqlError when it does not parse)."""
    return build(migration, read_statements(sql), facts)


def objects_of(statements: Iterable[Statement]) -> tuple[DbObject, ...]:
    """Every object the statements create, in file order (a later one of the same name wins)."""
    found: dict[tuple[str, str], DbObject] = {}
    for statement in statements:
        for created in statement.analysis.creates:
            found[(created.kind, created.name)] = created
    return tuple(found.values())


def build(migration: str, statements: list[Statement], facts: Facts | None = None) -> Plan:
    """The plan of these statements, with what the database says when there is one."""
    answered = [answer(s, statements, facts) for s in statements]
    ends = transaction_ends(answered)
    implicit = not any(s.analysis.transaction for s in answered)
    timeouts = {name for s in answered for name, _ in s.analysis.settings}
    planned = []
    lock_timeout = False
    held: dict[str, tuple[str, int]] = {}  # table -> (mode, since statement), this transaction
    for statement, end in zip(answered, ends, strict=True):
        settings = dict(statement.analysis.settings)
        lock_timeout = lock_timeout or "lock_timeout" in settings
        context = Context(end, implicit, lock_timeout, facts, held)
        planned.append(judge(statement, context))
        held = hold(held, statement) if end != statement.index else {}
    problems = []
    if facts is not None and facts.prisma_lock is not None:
        holder = facts.prisma_lock
        problems.append(
            f"Prisma Migrate's lock is held by backend {holder.pid} ({holder.state}): another"
            " `prisma migrate` is running, and this one would wait for it"
        )
    return Plan(
        migration=migration,
        in_transaction=implicit,
        sets_lock_timeout="lock_timeout" in timeouts,
        sets_statement_timeout="statement_timeout" in timeouts,
        statements=tuple(planned),
        objects=objects_of(statements),
        facts=facts,
        problems=tuple(problems),
    )


def transaction_ends(statements: list[Statement]) -> list[int]:
    """For each statement, the index of the last statement of its transaction: the file's last
    when the whole file is one implicit transaction (Prisma's case); else each explicit
    BEGIN ... COMMIT is one, and a statement outside them one of its own."""
    if not any(s.analysis.transaction for s in statements):
        return [statements[-1].index] * len(statements) if statements else []
    ends, opened = [], None
    for position, statement in enumerate(statements):
        kind = statement.analysis.transaction
        if kind == "begin":
            opened = position
        if opened is None:
            ends.append(statement.index)
            continue
        later = statements[position:]
        ends_at = (s.index for s in later if s.analysis.transaction in ("commit", "rollback"))
        closing = next(ends_at, statements[-1].index)
        ends.append(closing)
        if kind in ("commit", "rollback"):
            opened = None
    return ends


# --- what the file and the database answer ----------------------------------------------------


def answer(statement: Statement, statements: list[Statement], facts: Facts | None) -> Statement:
    """The statement with its questions answered, by the statements before it or the
    database; those left keep the worse case the analysis assumed."""
    analysis = statement.analysis
    earlier = [s.analysis for s in statements if s.index < statement.index]
    left = []
    for question in analysis.questions:
        found = from_file(question, earlier)
        if found is None and facts is not None:
            found = facts.answers.get(question)
        if found is None:
            left.append(question)
            continue
        analysis = apply(analysis, question, found, facts)
    return replace(statement, analysis=replace(analysis, questions=tuple(left)))


def from_file(question: Question, earlier: list[Analysis]) -> tuple[str, ...] | None:
    """What statements before this one tell: a column's type, a constraint's referenced table,
    an index's table, the tables a table references."""
    wanted = {
        "index_table": ("index", question.about[0]),
        "column_type": ("column", ".".join(question.about[:2])),
        "constraint_table": ("constraint", question.about[-1]),
        "references": ("table", question.about[0]),
    }.get(question.what)
    if wanted is None:
        return None
    for analysis in reversed(earlier):
        for created in analysis.creates:
            if (created.kind, created.name) != wanted:
                continue
            if question.what == "index_table":
                return (created.table,) if created.table else None
            if question.what == "column_type":
                return (created.detail,)
            if question.what == "references":
                return tuple(created.detail.split(":")[1:])
            kind, _, referenced = created.detail.partition(":")
            return (kind, referenced) if kind == "f" else ("c", "")
    return None


def apply(
    analysis: Analysis, question: Question, found: tuple[str, ...], facts: Facts | None
) -> Analysis:
    """The analysis once a question is answered."""
    timezone = "" if facts is None else facts.timezone
    if question.what == "column_type":
        table, column, target = question.about
        if found and not rewrites_type(found[0], target, timezone):
            note = f"{table}.{column}: {found[0]} to {target} keeps every value: no rewrite"
            return replace(analysis, rewrites=(), notes=(*without_assumed(analysis), note))
        return analysis
    if question.what == "volatile":
        if found and found[0] == "no":
            return replace(analysis, rewrites=(), notes=without_assumed(analysis))
        return analysis
    locks = dict(analysis.locks)
    if question.what == "index_table" and found:
        mode = locks.pop(question.about[0], AE)
        locks[found[0]] = mode
    elif question.what == "constraint_table" and len(found) == 2 and found[0] == "f":
        referenced = found[1]
        table_mode = locks[question.about[0]]
        locks[referenced] = "RowShareLock" if table_mode != AE else AE
    elif question.what == "references":
        for referenced in found:
            locks.setdefault(referenced, AE)
    return replace(analysis, locks=locks)


def without_assumed(analysis: Analysis) -> tuple[str, ...]:
    """The notes but those saying what was assumed."""
    return tuple(note for note in analysis.notes if "assumed" not in note)


# --- risks and advice -----------------------------------------------------------------------


def hold(held: dict[str, tuple[str, int]], statement: Statement) -> dict[str, tuple[str, int]]:
    """The locks held after this statement, in its transaction: each table's strongest mode
    and the statement that took it."""
    after = dict(held)
    for table, mode in statement.analysis.locks.items():
        before = after.get(table)
        if before is None or strongest([mode, before[0]]) != before[0]:
            after[table] = (mode, statement.index)
    return after


@dataclass(frozen=True)
class Finding:
    """One risk of a statement, the advice that removes it, and whether it makes the plan risky."""

    risk: str
    advice: str | None = None
    risky: bool = False


@dataclass(frozen=True)
class Context:
    """What a statement is judged in: its transaction, the file's settings before it, the locks
    its transaction holds already, and the database's facts."""

    held_to: int
    implicit: bool  # the file is one implicit transaction (Prisma's case)
    lock_timeout: bool  # set before this statement
    facts: Facts | None
    held: dict[str, tuple[str, int]]

    def rows(self, table: str) -> float | None:
        """The table's rows as the database estimates them; None without a database."""
        return rows_of(table, self.facts)


def judge(statement: Statement, context: Context) -> Planned:
    """The statement's risks and the advice that removes each."""
    analysis = statement.analysis
    findings = [
        *transaction_findings(analysis, context),
        *held_findings(analysis, context),
        *rewrite_findings(analysis, context),
        *lock_findings(statement, context),
        *row_findings(analysis, context),
    ]
    return Planned(
        index=statement.index,
        line=statement.line,
        text=statement.text,
        kind=analysis.kind,
        locks=tuple(analysis.locks.items()),
        rewrites=analysis.rewrites,
        scans=analysis.scans,
        outside_transaction=analysis.outside_transaction,
        held_to=context.held_to,
        risks=tuple(f.risk for f in findings),
        advice=tuple(dict.fromkeys(f.advice for f in findings if f.advice)),
        risky=any(f.risky for f in findings),
        notes=analysis.notes,
        creates=analysis.creates,
    )


def transaction_findings(analysis: Analysis, context: Context) -> list[Finding]:
    """A statement that cannot run where Prisma runs it."""
    if not (analysis.outside_transaction and context.implicit):
        return []
    return [
        Finding(
            f"{analysis.kind} cannot run inside a transaction block, and Prisma runs the file as"
            " one: the migration fails (SQLSTATE 25001)",
            f"put the {analysis.kind} in a migration of its own",
            risky=True,
        )
    ]


def held_findings(analysis: Analysis, context: Context) -> list[Finding]:
    """A statement that runs while its transaction already holds ACCESS EXCLUSIVE."""
    found = []
    for table in analysis.locks:
        before = context.held.get(table)
        if before is None or before[0] != AE or context.rows(table) == 0:
            continue
        advice = scan_advice(analysis) if table in analysis.scans else None
        found.append(
            Finding(
                f"runs while {table} is held in ACCESS EXCLUSIVE (since statement {before[1]}):"
                f" its time adds to the time every read and write of {table} waits",
                advice,
            )
        )
    return found


def rewrite_findings(analysis: Analysis, context: Context) -> list[Finding]:
    """A table written anew under the statement's lock."""
    return [
        Finding(
            f"rewrites {table}{sized(table, context.facts)}: {rewrite_reason(analysis)}",
            rewrite_advice(analysis),
            risky=not context.lock_timeout,
        )
        for table in analysis.rewrites
        if context.rows(table) != 0
    ]


def lock_findings(statement: Statement, context: Context) -> list[Finding]:
    """The statement's own locks, where its transaction does not hold ACCESS EXCLUSIVE yet."""
    analysis, facts = statement.analysis, context.facts
    found = []
    for table, mode in analysis.locks.items():
        before = context.held.get(table)
        if (before is not None and before[0] == AE) or context.rows(table) == 0:
            continue
        if mode == AE:
            held = held_words(statement.index, context.held_to)
            found.append(
                Finding(
                    f"{spoken(mode)} on {table}{sized(table, facts)} {held}: every read and write"
                    f" of {table} waits{queued(table, facts)}, and the lock itself waits behind"
                    f" any open transaction that touched {table}",
                    None if context.lock_timeout else LOCK_TIMEOUT_ADVICE,
                    risky=not context.lock_timeout,
                )
            )
        elif blocks_app(mode):
            advice = scan_advice(analysis) if analysis.scans else None
            words = blocked_words(mode)
            found.append(Finding(f"{spoken(mode)} on {table}: {words} of {table} wait", advice))
    return found


def row_findings(analysis: Analysis, context: Context) -> list[Finding]:
    """Rows an UPDATE or DELETE keeps locked to the end of the transaction."""
    if not analysis.writes_rows:
        return []
    tables = ", ".join(analysis.writes_rows)
    return [
        Finding(
            f"the rows of {tables} it changes stay locked to the end of the transaction"
            f" (statement {context.held_to}): logins that write them wait",
            "backfill in batches outside the migration, each batch its own transaction",
        )
    ]


LOCK_TIMEOUT_ADVICE = (
    "SET lock_timeout = '2s' at the top of the file and retry the deploy when it gives up:"
    " the ALTER then fails fast instead of queueing every login behind it"
)


def rows_of(table: str, facts: Facts | None) -> float | None:
    """The table's rows as the database estimates them; None without a database."""
    if facts is None or table not in facts.tables:
        return None
    return facts.tables[table].rows


def sized(table: str, facts: Facts | None) -> str:
    """' (12,345 rows, 3.1 MiB)' when the database said, else nothing."""
    if facts is None or table not in facts.tables:
        return ""
    found = facts.tables[table]
    return f" ({found.rows:,.0f} rows, {found.bytes / 2**20:.1f} MiB)"


def queued(table: str, facts: Facts | None) -> str:
    """' (at 40 operations a second on average, a 10 s wait queues about 400)' when known."""
    if facts is None or table not in facts.tables:
        return ""
    rate = facts.tables[table].per_second
    if rate is None:
        return ""
    return (
        f" (at {rate:,.0f} operations a second on average, a 10 s wait queues about"
        f" {rate * 10:,.0f})"
    )


def held_words(index: int, held_to: int) -> str:
    """How long the statement holds its locks."""
    if held_to == index:
        return "for this statement"
    return f"from here to the end of the transaction (statement {held_to})"


def rewrite_reason(analysis: Analysis) -> str:
    """Why the table is rewritten, in the analysis's words when it has some."""
    return "; ".join(analysis.notes) or f"{analysis.kind} writes every row anew"


def rewrite_advice(analysis: Analysis) -> str:
    """How to change the table without rewriting it under the lock."""
    if analysis.kind == "ALTER TABLE":
        return (
            "add the column without a volatile default (or keep the old column), backfill it"
            " in batches, then set the default; for a type change, a new column filled in"
            " batches and swapped in"
        )
    return f"avoid {analysis.kind} on a live table, or run it in a maintenance window"


def scan_advice(analysis: Analysis) -> str:
    """How to avoid reading the whole table under the lock."""
    if analysis.kind == "CREATE INDEX":
        return "CREATE INDEX CONCURRENTLY, in a migration of its own"
    return "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration"
