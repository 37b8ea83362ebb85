"""ALTER TABLE: each command's lock (ACCESS EXCLUSIVE unless the manual says less), what it
rewrites or reads in full, and the constraints and columns it creates; the strongest lock of its
commands is the statement's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType as At
from pglast.enums import ConstrType, ObjectType

from monitor.lockplan.analysis import (
    AE,
    LIGHT_OPTIONS,
    SERIAL,
    SRE,
    STABLE,
    SUE,
    VOLATILE,
    Analysis,
    DbObject,
    Question,
    function_names,
    relation,
    type_text,
)


def alter_table(node: ast.AlterTableStmt) -> Analysis:
    """The strongest lock of its commands, on the table (and any table they reference)."""
    table = relation(node.relation)
    kind = "ALTER INDEX" if node.objtype == ObjectType.OBJECT_INDEX else "ALTER TABLE"
    result = Analysis(kind=kind)
    for cmd in node.cmds or ():
        result = result.merged(alter_command(table, cmd))
    return result


def alter_command(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """One command of an ALTER TABLE."""
    handler = ALTER_COMMANDS.get(cmd.subtype)
    if handler is not None:
        return handler(table, cmd)
    mode = LIGHT_COMMANDS.get(cmd.subtype, AE)  # ACCESS EXCLUSIVE unless the manual says less
    rewrites = (table,) if cmd.subtype in REWRITING_COMMANDS else ()
    return Analysis(kind="", locks={table: mode}, rewrites=rewrites)


LIGHT_COMMANDS = {
    At.AT_SetStatistics: SUE,
    At.AT_SetOptions: SUE,
    At.AT_ResetOptions: SUE,
    At.AT_ClusterOn: SUE,
    At.AT_DropCluster: SUE,
    At.AT_EnableTrig: SRE,
    At.AT_EnableAlwaysTrig: SRE,
    At.AT_EnableReplicaTrig: SRE,
    At.AT_DisableTrig: SRE,
    At.AT_EnableTrigAll: SRE,
    At.AT_DisableTrigAll: SRE,
    At.AT_EnableTrigUser: SRE,
    At.AT_DisableTrigUser: SRE,
}
REWRITING_COMMANDS = frozenset(
    {At.AT_SetLogged, At.AT_SetUnLogged, At.AT_SetAccessMethod, At.AT_SetTableSpace}
)


def add_column(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """ACCESS EXCLUSIVE; a rewrite when every row needs a value of its own (a volatile default,
    a stored generated column, an identity or serial); constraints as ADD CONSTRAINT's."""
    column: ast.ColumnDef = cmd.def_
    name = f"{table}.{column.colname}"
    result = Analysis(kind="", locks={table: AE}, creates=(DbObject("column", name),))
    type_name = str(column.typeName.names[-1].sval) if column.typeName else ""
    if type_name in SERIAL:
        result = replace(
            result, rewrites=(table,), notes=(f"{name} is {type_name}: filled row by row",)
        )
    for constraint in column.constraints or ():
        result = result.merged(column_constraint(table, name, constraint))
    return result


def column_constraint(table: str, column: str, constraint: ast.Constraint) -> Analysis:
    """What a constraint written on a new column adds to its ALTER TABLE."""
    kind = constraint.contype
    if kind in (ConstrType.CONSTR_GENERATED, ConstrType.CONSTR_IDENTITY):
        return Analysis(kind="", rewrites=(table,), notes=(f"{column} is filled row by row",))
    if kind == ConstrType.CONSTR_DEFAULT:
        return default_value(table, column, constraint.raw_expr)
    if kind in (ConstrType.CONSTR_NULL, ConstrType.CONSTR_NOTNULL):
        return Analysis(kind="")
    return table_constraint(table, constraint)


def default_value(table: str, column: str, expression: Any) -> Analysis:
    """A default: stored once when it is a constant or stable; a rewrite when volatile."""
    called = set(function_names(expression))
    volatile = called & VOLATILE
    unknown = called - VOLATILE - STABLE
    if volatile:
        why = f"{column} defaults to {sorted(volatile)[0]}(), volatile: a value per row"
        return Analysis(kind="", rewrites=(table,), notes=(why,))
    if unknown:
        question = Question("volatile", tuple(sorted(unknown)))
        why = f"{column}'s default calls {', '.join(sorted(unknown))}(): assumed volatile"
        return Analysis(kind="", rewrites=(table,), questions=(question,), notes=(why,))
    return Analysis(kind="")


def table_constraint(table: str, constraint: ast.Constraint) -> Analysis:
    """ADD CONSTRAINT (or one written on a new column): the lock, scan and objects it makes."""
    kind = constraint.contype
    named: tuple[DbObject, ...] = ()
    if constraint.conname:
        named = (DbObject("constraint", str(constraint.conname), table, detail=str(kind.name)),)
    if kind == ConstrType.CONSTR_FOREIGN:
        referenced = relation(constraint.pktable)
        named = tuple(replace(o, detail=f"f:{referenced}") for o in named)
        scans = () if constraint.skip_validation else (table,)
        return Analysis(kind="", locks={table: SRE, referenced: SRE}, scans=scans, creates=named)
    if kind == ConstrType.CONSTR_CHECK:
        scans = () if constraint.skip_validation else (table,)
        return Analysis(kind="", locks={table: AE}, scans=scans, creates=named)
    if kind in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION):
        builds = () if constraint.indexname else (table,)  # USING INDEX: already built
        index = (DbObject("index", str(constraint.conname), table),) if constraint.conname else ()
        return Analysis(kind="", locks={table: AE}, scans=builds, creates=named + index)
    return Analysis(kind="", locks={table: AE}, creates=named)


def add_constraint(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """ALTER TABLE ... ADD CONSTRAINT."""
    return table_constraint(table, cmd.def_)


def validate_constraint(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """SHARE UPDATE EXCLUSIVE and a scan; a foreign key's also takes ROW SHARE on the table it
    references (which only the database, or an ADD earlier in the file, can name)."""
    question = Question("constraint_table", (table, str(cmd.name)))
    return Analysis(kind="", locks={table: SUE}, scans=(table,), questions=(question,))


def drop_constraint(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """ACCESS EXCLUSIVE; a foreign key's drop takes it on the referenced table too."""
    question = Question("constraint_table", (table, str(cmd.name)))
    return Analysis(kind="", locks={table: AE}, questions=(question,))


def set_not_null(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """ACCESS EXCLUSIVE, and every row read to check it (unless a valid CHECK proves it)."""
    return Analysis(kind="", locks={table: AE}, scans=(table,))


def alter_column_type(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """ACCESS EXCLUSIVE; a rewrite unless the old type converts without touching the rows,
    which needs the column's type now (the database's, or one made earlier in the file)."""
    column: ast.ColumnDef = cmd.def_
    target = type_text(column.typeName)
    if column.raw_default is not None:  # USING: every value computed anew
        return Analysis(kind="", locks={table: AE}, rewrites=(table,))
    question = Question("column_type", (table, str(cmd.name), target))
    why = f"{table}.{cmd.name} TYPE {target}: assumed to rewrite"
    return Analysis(
        kind="", locks={table: AE}, rewrites=(table,), questions=(question,), notes=(why,)
    )


def set_options(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """SET (storage parameters): SHARE UPDATE EXCLUSIVE for the light ones, else ACCESS
    EXCLUSIVE."""
    names = [str(option.defname) for option in cmd.def_ or ()]
    light = all(name.startswith(LIGHT_OPTIONS) for name in names)
    return Analysis(kind="", locks={table: SUE if light else AE})


def attach_partition(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """SHARE UPDATE EXCLUSIVE on the parent, ACCESS EXCLUSIVE on the partition (scanned)."""
    partition = relation(cmd.def_.name)
    return Analysis(kind="", locks={table: SUE, partition: AE}, scans=(partition,))


def detach_partition(table: str, cmd: ast.AlterTableCmd) -> Analysis:
    """ACCESS EXCLUSIVE on both; CONCURRENTLY: SHARE UPDATE EXCLUSIVE, outside a transaction."""
    partition = relation(cmd.def_.name)
    if cmd.def_.concurrent:
        return Analysis(kind="", locks={table: SUE, partition: SUE}, outside_transaction=True)
    return Analysis(kind="", locks={table: AE, partition: AE})


ALTER_COMMANDS: dict[Any, Callable[[str, ast.AlterTableCmd], Analysis]] = {
    At.AT_AddColumn: add_column,
    At.AT_AddConstraint: add_constraint,
    At.AT_ValidateConstraint: validate_constraint,
    At.AT_DropConstraint: drop_constraint,
    At.AT_SetNotNull: set_not_null,
    At.AT_AlterColumnType: alter_column_type,
    At.AT_SetRelOptions: set_options,
    At.AT_ResetRelOptions: set_options,
    At.AT_AttachPartition: attach_partition,
    At.AT_DetachPartition: detach_partition,
}
