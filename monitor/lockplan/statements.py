"""What one statement does to the tables, from its parse tree alone: the lock it takes on each
relation (the strongest, as pg_locks names it), which tables it rewrites (a new relfilenode) or
reads in full under that lock, what it creates, and whether it can run in a transaction block.

The modes are PostgreSQL's (the ALTER TABLE, CREATE INDEX, ... pages of the manual, 15 to 17),
and tests/test_lock_plan.py holds them against pg_locks on a real server. What the parse tree
cannot say (the type a column has now, whether a constraint is a foreign key, the table of an
index, a function's volatility) is a `Question` a database can answer (monitor.lockplan.facts);
without one the plan assumes the worse case and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pglast import ast
from pglast.enums import ConstrType, ObjectType, TransactionStmtKind

from monitor.lockplan.altering import alter_table, table_constraint
from monitor.lockplan.analysis import (
    AE,
    AS,
    RE,
    RS,
    SHARE,
    SRE,
    SUE,
    Analysis,
    DbObject,
    Question,
    relation,
    walk,
)


def analyse(node: Any) -> Analysis:
    """The analysis of one parsed statement; an unknown kind locks nothing it can name."""
    handler = HANDLERS.get(type(node).__name__)
    if handler is None:
        return Analysis(kind=kind_of(node), notes=("not a statement this plan models",))
    return handler(node)


def kind_of(node: Any) -> str:
    """CreateTrigStmt -> CREATE TRIG: a readable name for a statement this plan does not model."""
    name = type(node).__name__.removesuffix("Stmt")
    words, word = [], ""
    for char in name:
        if char.isupper() and word:
            words.append(word)
            word = ""
        word += char
    return " ".join([*words, word]).upper()


def create_index(node: ast.IndexStmt) -> Analysis:
    """SHARE (writes wait, reads go on) and a read of the table; CONCURRENTLY: SHARE UPDATE
    EXCLUSIVE, outside a transaction block."""
    table = relation(node.relation)
    mode = SUE if node.concurrent else SHARE
    name = str(node.idxname) if node.idxname else default_index_name(node)
    return Analysis(
        kind="CREATE INDEX",
        locks={table: mode},
        scans=(table,),
        creates=(DbObject("index", name, table),),
        outside_transaction=bool(node.concurrent),
    )


def default_index_name(node: ast.IndexStmt) -> str:
    """The name PostgreSQL gives an unnamed index (table_column_..._idx, up to 63 bytes)."""
    columns = [str(p.name) if p.name else "expr" for p in node.indexParams or ()]
    return "_".join([str(node.relation.relname), *columns, "idx"])[:63]


def create_trigger(node: ast.CreateTrigStmt) -> Analysis:
    """SHARE ROW EXCLUSIVE on its table."""
    table = relation(node.relation)
    created = DbObject("trigger", str(node.trigname), table)
    return Analysis(kind="CREATE TRIGGER", locks={table: SRE}, creates=(created,))


def create_function(node: ast.CreateFunctionStmt) -> Analysis:
    """No table lock."""
    kind = "CREATE PROCEDURE" if node.is_procedure else "CREATE FUNCTION"
    name = str(node.funcname[-1].sval)
    return Analysis(kind=kind, creates=(DbObject("function", name),))


def create_table(node: ast.CreateStmt) -> Analysis:
    """The new table (ACCESS EXCLUSIVE, empty); SHARE ROW EXCLUSIVE on the tables its foreign
    keys reference; ACCESS SHARE on a LIKE's source; its constraints and indexes."""
    table = relation(node.relation)
    result = Analysis(kind="CREATE TABLE", locks={table: AE})
    for element in node.tableElts or ():
        if isinstance(element, ast.ColumnDef):
            for constraint in element.constraints or ():
                if constraint.contype not in (
                    ConstrType.CONSTR_NULL,
                    ConstrType.CONSTR_NOTNULL,
                    ConstrType.CONSTR_DEFAULT,
                ):
                    result = result.merged(table_constraint(table, constraint))
        elif isinstance(element, ast.Constraint):
            result = result.merged(table_constraint(table, element))
        elif isinstance(element, ast.TableLikeClause):
            result = result.merged(Analysis(kind="", locks={relation(element.relation): AS}))
    for parent in node.inhRelations or ():
        result = result.merged(Analysis(kind="", locks={relation(parent): SUE}))
    # What a DROP of it later in the file needs to know: the tables its foreign keys reference.
    referenced = [t for t, mode in result.locks.items() if mode == SRE and t != table]
    created = DbObject("table", table, detail=":".join(["f", *referenced]))
    return replace(result, scans=(), creates=(created, *result.creates))


def drop(node: ast.DropStmt) -> Analysis:
    """DROP TABLE, INDEX, TRIGGER, VIEW, ...: ACCESS EXCLUSIVE on the table concerned."""
    kind = node.removeType
    names = [tuple(str(part.sval) for part in obj) for obj in node.objects or ()]
    if kind == ObjectType.OBJECT_TRIGGER:  # (table, trigger)
        tables = {".".join(name[:-1]): AE for name in names}
        return Analysis(kind="DROP TRIGGER", locks=tables)
    if kind == ObjectType.OBJECT_INDEX:
        mode = SUE if node.concurrent else AE
        questions = tuple(Question("index_table", (".".join(name),)) for name in names)
        return Analysis(
            kind="DROP INDEX",
            locks={".".join(name): mode for name in names},
            questions=questions,
            outside_transaction=bool(node.concurrent),
        )
    if kind in RELATION_KINDS:
        questions = tuple(Question("references", (".".join(name),)) for name in names)
        return Analysis(
            kind=f"DROP {RELATION_KINDS[kind]}",
            locks={".".join(name): AE for name in names},
            questions=questions if kind == ObjectType.OBJECT_TABLE else (),
        )
    return Analysis(kind=f"DROP {kind.name.removeprefix('OBJECT_')}")


RELATION_KINDS = {
    ObjectType.OBJECT_TABLE: "TABLE",
    ObjectType.OBJECT_VIEW: "VIEW",
    ObjectType.OBJECT_MATVIEW: "MATERIALIZED VIEW",
    ObjectType.OBJECT_SEQUENCE: "SEQUENCE",
}


def rename(node: ast.RenameStmt) -> Analysis:
    """ACCESS EXCLUSIVE on the table renamed (or whose column, constraint or trigger is);
    an index's rename takes SHARE UPDATE EXCLUSIVE on the index alone."""
    target = relation(node.relation) if node.relation else ""
    if node.renameType == ObjectType.OBJECT_INDEX:
        note = f"SHARE UPDATE EXCLUSIVE on the index {target} alone: no table waits"
        return Analysis(kind="ALTER INDEX", notes=(note,))
    if not target:
        return Analysis(kind="RENAME")
    return Analysis(kind="RENAME", locks={target: AE})


def dml(node: Any) -> Analysis:
    """INSERT, UPDATE, DELETE: ROW EXCLUSIVE on the target, ACCESS SHARE on what it reads; the
    rows it changes stay locked until the transaction ends."""
    target = relation(node.relation)
    kind = type(node).__name__.removesuffix("Stmt").upper()
    read = {name: AS for name in relations_in(node) if name != target}
    writes = (target,) if kind in ("UPDATE", "DELETE") else ()
    return Analysis(kind=kind, locks={**read, target: RE}, writes_rows=writes)


def select(node: ast.SelectStmt) -> Analysis:
    """ACCESS SHARE on what it reads; FOR UPDATE and the like: ROW SHARE."""
    mode = RS if node.lockingClause else AS
    return Analysis(kind="SELECT", locks=dict.fromkeys(relations_in(node), mode))


def relations_in(node: Any) -> list[str]:
    """Every table a statement names (FROM, USING, subqueries), but CTE names."""
    ctes = {str(c.ctename) for c in walk(node) if isinstance(c, ast.CommonTableExpr)}
    found = [relation(r) for r in walk(node) if isinstance(r, ast.RangeVar)]
    return [name for name in dict.fromkeys(found) if name not in ctes]


def truncate(node: ast.TruncateStmt) -> Analysis:
    """ACCESS EXCLUSIVE, and a new, empty file for each table."""
    tables = tuple(relation(r) for r in node.relations)
    return Analysis(kind="TRUNCATE", locks=dict.fromkeys(tables, AE), rewrites=tables)


def vacuum(node: ast.VacuumStmt) -> Analysis:
    """VACUUM (outside a transaction block): SHARE UPDATE EXCLUSIVE, or ACCESS EXCLUSIVE and a
    rewrite when FULL; ANALYZE: SHARE UPDATE EXCLUSIVE."""
    options = {str(option.defname) for option in node.options or ()}
    tables = tuple(relation(r.relation) for r in node.rels or ())
    if not node.is_vacuumcmd:
        return Analysis(kind="ANALYZE", locks=dict.fromkeys(tables, SUE))
    full = "full" in options
    return Analysis(
        kind="VACUUM FULL" if full else "VACUUM",
        locks=dict.fromkeys(tables, AE if full else SUE),
        rewrites=tables if full else (),
        outside_transaction=True,
    )


def cluster(node: ast.ClusterStmt) -> Analysis:
    """ACCESS EXCLUSIVE and a rewrite in the index's order."""
    table = relation(node.relation) if node.relation else ""
    return Analysis(kind="CLUSTER", locks={table: AE} if table else {}, rewrites=(table,))


def reindex(node: ast.ReindexStmt) -> Analysis:
    """SHARE on the table (writes wait); CONCURRENTLY: SHARE UPDATE EXCLUSIVE, outside a
    transaction block. REINDEX INDEX names the index: the table is the database's to say."""
    concurrent = any(str(p.defname) == "concurrently" for p in node.params or ())
    mode = SUE if concurrent else SHARE
    target = relation(node.relation) if node.relation else str(node.name or "")
    questions: tuple[Question, ...] = ()
    if node.kind.name == "REINDEX_OBJECT_INDEX":
        questions = (Question("index_table", (target,)),)
    return Analysis(
        kind="REINDEX",
        locks={target: mode} if target else {},
        questions=questions,
        outside_transaction=concurrent,
    )


def comment(node: ast.CommentStmt) -> Analysis:
    """SHARE UPDATE EXCLUSIVE on the table commented on (or whose column is)."""
    if node.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN):
        parts = [str(part.sval) for part in node.object]
        table = ".".join(parts if node.objtype == ObjectType.OBJECT_TABLE else parts[:-1])
        return Analysis(kind="COMMENT", locks={table: SUE})
    return Analysis(kind="COMMENT")


def create_view(node: ast.ViewStmt) -> Analysis:
    """ACCESS SHARE on what it reads; ACCESS EXCLUSIVE on the view (replaced or new)."""
    view = relation(node.view)
    reads = dict.fromkeys(relations_in(node.query), AS)
    return Analysis(kind="CREATE VIEW", locks={**reads, view: AE})


def create_policy(node: ast.CreatePolicyStmt) -> Analysis:
    """ACCESS EXCLUSIVE on its table."""
    return Analysis(kind="CREATE POLICY", locks={relation(node.table): AE})


def set_variable(node: ast.VariableSetStmt) -> Analysis:
    """SET name = value (lock_timeout, statement_timeout: what bounds the waits after it)."""
    values = [str(getattr(a.val, "sval", getattr(a.val, "ival", ""))) for a in node.args or ()]
    return Analysis(kind="SET", settings=((str(node.name), ", ".join(values)),))


def transaction(node: ast.TransactionStmt) -> Analysis:
    """BEGIN, COMMIT, ROLLBACK: where a transaction of the file's own starts or ends."""
    kinds = {
        TransactionStmtKind.TRANS_STMT_BEGIN: "begin",
        TransactionStmtKind.TRANS_STMT_START: "begin",
        TransactionStmtKind.TRANS_STMT_COMMIT: "commit",
        TransactionStmtKind.TRANS_STMT_ROLLBACK: "rollback",
    }
    found = kinds.get(node.kind)
    return Analysis(kind=(found or "transaction").upper(), transaction=found)


def do_block(node: ast.DoStmt) -> Analysis:
    """A DO block: what it runs is code this plan cannot read."""
    return Analysis(kind="DO", notes=("a DO block: what it locks is not known before it runs",))


HANDLERS: dict[str, Callable[[Any], Analysis]] = {
    "AlterTableStmt": alter_table,
    "IndexStmt": create_index,
    "CreateTrigStmt": create_trigger,
    "CreateFunctionStmt": create_function,
    "CreateStmt": create_table,
    "DropStmt": drop,
    "RenameStmt": rename,
    "InsertStmt": dml,
    "UpdateStmt": dml,
    "DeleteStmt": dml,
    "SelectStmt": select,
    "TruncateStmt": truncate,
    "VacuumStmt": vacuum,
    "ClusterStmt": cluster,
    "ReindexStmt": reindex,
    "CommentStmt": comment,
    "ViewStmt": create_view,
    "CreatePolicyStmt": create_policy,
    "VariableSetStmt": set_variable,
    "TransactionStmt": transaction,
    "DoStmt": do_block,
}
