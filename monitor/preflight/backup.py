"""The backup the plan asks for: present, recent, and readable to the end by the right tool.

Archive formats (custom, tar, directory) are read by pg_restore twice: `--list` for the table of
contents, then a full read into /dev/null, because the table of contents sits at the start of the
file and `--list` succeeds on an archive cut short after it. A plain-SQL dump is something
pg_restore cannot read at all (the plan's own `pg_restore --list` check fails on a good one): it
is read here line by line for pg_dump's header, CREATE TABLE of each table, and the marker
pg_dump writes last.
"""

from __future__ import annotations

import gzip
import re
import stat
import tarfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from monitor.config.durations import format_duration
from monitor.config.files import open_regular
from monitor.config.schema import PreflightSettings
from monitor.preflight.result import CheckResult, failed, passed
from monitor.preflight.tools import PgRestore, ReadFailed, ToolMissing, find_pg_restore

PLAIN_HEADER = b"--\n-- PostgreSQL database dump\n--"
PLAIN_END = "-- PostgreSQL database dump complete"
GZIP_MAGIC = b"\x1f\x8b"
_TAIL_LINES = 8  # pg_dump 15.14+ writes `\unrestrict <key>` after the end marker
_BARE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")
_DUMPED_BY = re.compile(r"^;?\s*-*\s*Dumped by pg_dump version:? (\S+)")
_TIMED_OUT = "not read to the end within preflight.backup_timeout"
NOT_A_BACKUP = "not a regular file or a directory: cannot be a backup"
# What of a plain dump's line is looked at (CREATE TABLE, the header, the end marker are short);
# the rest of a longer line is read past, so memory stays bounded whatever the line.
MAX_LINE_BYTES = 64 * 1024


class Unreadable(Exception):
    """The system refuses to let the monitor read or look into a path; the message names it."""

    def __init__(self, path: Path, why: str = "") -> None:
        super().__init__(f"{path}: permission denied{why}")


@dataclass(frozen=True)
class Backup:
    """A backup found on disk: where, in which format, and when it was last written."""

    path: Path
    format: str
    mtime: float


@dataclass(frozen=True)
class Tables:
    """The tables a usable backup must hold, as (schema, table)."""

    schema: str
    names: tuple[str, ...]

    def qualified(self) -> str:
        """'public.users, public.threads_tokens'."""
        return ", ".join(f"{self.schema}.{name}" for name in self.names)


def detect_format(path: Path) -> str | None:
    """custom, tar, directory, plain or plain.gz from the content (never the name); else None.

    Unreadable when permissions forbid looking: never mistaken for "not a backup".
    """
    try:
        if stat.S_ISDIR(path.stat().st_mode):
            return "directory" if _is_file(path / "toc.dat") else None
        with open_regular(path) as file:
            head = file.read(512)
    except PermissionError:
        raise Unreadable(path) from None
    except OSError:
        return None
    if head.startswith(b"PGDMP"):
        return "custom"
    if head[257:262] == b"ustar" and head.startswith(b"toc.dat\x00"):
        return "tar"
    if head.startswith(GZIP_MAGIC):
        return "plain.gz" if _gzip_head(path).startswith(PLAIN_HEADER) else None
    return "plain" if head.startswith(PLAIN_HEADER) else None


def _is_file(path: Path) -> bool:
    """Whether path is a file; PermissionError when its directory may not be searched."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except PermissionError:
        raise
    except OSError:
        return False


def _gzip_head(path: Path) -> bytes:
    try:
        with open_regular(path) as raw, gzip.GzipFile(fileobj=raw) as file:
            return file.read(len(PLAIN_HEADER))
    except (OSError, EOFError):
        return b""


def written_at(path: Path, kind: str) -> float:
    """When the backup was finished: a directory's toc.dat is written last."""
    return (path / "toc.dat" if kind == "directory" else path).stat().st_mtime


def find_backup(path: Path | None) -> tuple[Backup | None, CheckResult]:
    """The backup at path (a file, a dump directory, or the newest backup in a directory)."""
    name = "backup_present"
    if path is None:
        return None, failed(name, "no backup given: use --backup PATH or preflight.backup")
    try:
        return _backup_at(path)
    except Unreadable as error:
        return None, failed(name, str(error))


def _backup_at(path: Path) -> tuple[Backup | None, CheckResult]:
    name = "backup_present"
    if not _exists(path):
        return None, failed(name, f"{path}: no such file or directory")
    kind = detect_format(path)
    if kind is None and path.is_dir():
        return _newest_in(path)
    if kind is None and not path.is_file():
        return None, failed(name, f"{path}: {NOT_A_BACKUP}")
    if kind is None:
        return None, failed(
            name, f"{path}: not a pg_dump backup (neither custom, tar, directory nor plain SQL)"
        )
    backup = Backup(path, kind, written_at(path, kind))
    return backup, passed(name, f"{path} ({kind} format)", path=str(path), format=kind)


def _exists(path: Path) -> bool:
    """Whether anything is at path; Unreadable when a directory above may not be searched."""
    try:
        path.stat()
    except PermissionError:
        raise Unreadable(path) from None
    except OSError:
        return False
    return True


def _newest_in(directory: Path) -> tuple[Backup | None, CheckResult]:
    try:
        entries = [entry for entry in directory.iterdir() if not entry.name.startswith(".")]
    except PermissionError:
        raise Unreadable(directory) from None
    found, unreadable = _backups_among(entries)
    backup = max(found, key=lambda b: b.mtime, default=None)
    _refuse_older_than_unreadable(directory, backup, unreadable)
    if backup is None:
        return None, failed(
            "backup_present",
            f"{directory}: no pg_dump backup among its {len(entries)} entries",
        )
    detail = f"{backup.path} ({backup.format} format; newest of {len(found)} in {directory})"
    return backup, passed("backup_present", detail, path=str(backup.path), format=backup.format)


def _backups_among(entries: Sequence[Path]) -> tuple[list[Backup], list[Path]]:
    """The backups among the entries, and the entries that could not be read to tell."""
    found, unreadable = [], []
    for entry in entries:
        try:
            kind = detect_format(entry)
        except Unreadable:
            unreadable.append(entry)
            continue
        if kind is not None:
            found.append(Backup(entry, kind, written_at(entry, kind)))
    return found, unreadable


def _refuse_older_than_unreadable(
    directory: Path, newest: Backup | None, unreadable: Sequence[Path]
) -> None:
    """Unreadable if an entry that may be the latest backup cannot be read.

    Checking an older dump in its place would pass the checklist on a backup that is not the
    one just taken.
    """
    after = -float("inf") if newest is None else newest.mtime
    newer = [(mtime, entry) for entry in unreadable if (mtime := entry.stat().st_mtime) > after]
    if not newer:
        return
    entry = max(newer)[1]
    if newest is None:
        raise Unreadable(entry, f" (no backup readable in {directory})")
    raise Unreadable(entry, f" (newer than {newest.path}, the newest backup readable)")


def check_recent(backup: Backup, max_age: float, now: float) -> CheckResult:
    """Whether the backup was written within max_age seconds of now."""
    name = "backup_recent"
    age = now - backup.mtime
    stamp = datetime.fromtimestamp(backup.mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    observed = {"written_at": stamp, "age_seconds": round(age), "max_age_seconds": max_age}
    limit = format_duration(max_age)
    if age > max_age:
        return failed(name, f"written {_ago(age)} ago ({stamp}), more than {limit}", **observed)
    return passed(name, f"written {_ago(age)} ago ({stamp}), within {limit}", **observed)


def _ago(seconds: float) -> str:
    """A rough, readable age: 42s, 17m, 25h, 3d (hours up to two days, to compare with 24h)."""
    for unit, size, above in (("d", 86400, 172800), ("h", 3600, 3600), ("m", 60, 60)):
        if abs(seconds) >= above:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def check_restorable(backup: Backup, settings: PreflightSettings, tables: Tables) -> CheckResult:
    """Whether the backup can be read to its end and holds the tables."""
    deadline = time.monotonic() + settings.backup_timeout
    if backup.format.startswith("plain"):
        return _check_plain(backup, tables, deadline)
    try:
        tool = find_pg_restore(settings.pg_restore)
    except ToolMissing as error:
        return failed("backup_restorable", str(error))
    return _check_archive(backup, tool, tables, deadline)


def _check_archive(backup: Backup, tool: PgRestore, tables: Tables, deadline: float) -> CheckResult:
    name = "backup_restorable"
    observed = {"reader": f"pg_restore {tool.version}"}
    try:
        listing = tool.run(["--list", str(backup.path)], deadline)
        check_listing(listing, tool, tables)
        if backup.format == "tar":
            read_tar(backup.path, deadline)
        tool.run(["--file=/dev/null", str(backup.path)], deadline)
    except ReadFailed as error:
        return failed(name, str(error), **observed)
    entries = sum(1 for line in listing.splitlines() if line and not line.startswith(";"))
    dumped_by = _dumped_by(listing.splitlines())
    return passed(
        name,
        f"pg_restore {tool.version} read all of it ({entries} entries, dumped by pg_dump "
        f"{dumped_by}); tables {tables.qualified()} present",
        **observed,
        entries=entries,
        dumped_by=dumped_by,
    )


def check_listing(listing: str, tool: PgRestore, tables: Tables) -> None:
    """ReadFailed unless the table of contents has the tables and tool is new enough for it."""
    missing = [t for t in tables.names if not _lists_table(listing, tables.schema, t)]
    if missing:
        gone = ", ".join(f"{tables.schema}.{t}" for t in missing)
        raise ReadFailed(f"the backup has no table {gone}")
    dumped_by = _dumped_by(listing.splitlines())
    if _major(dumped_by) > _major(tool.version):
        raise ReadFailed(
            f"pg_restore {tool.version} is older than the pg_dump {dumped_by} that wrote it: "
            "set preflight.pg_restore to a newer one"
        )


def _major(version: str) -> int:
    """15 of '15.18'; 0 when unknown (an unknown version never fails the check)."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _lists_table(listing: str, schema: str, table: str) -> bool:
    """Whether `pg_restore --list` shows a TABLE entry (names appear there unquoted)."""
    pattern = re.compile(rf"^\d+; \d+ \d+ TABLE {re.escape(schema)} {re.escape(table)} ", re.M)
    return pattern.search(listing) is not None


def read_tar(path: Path, deadline: float) -> None:
    """Read every member by the deadline: pg_restore 15 spins forever on some tars cut short."""
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                _read_member(archive.extractfile(member), deadline)
    except PermissionError:
        raise ReadFailed(f"{path}: permission denied") from None
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ReadFailed(f"tar archive cut short or corrupt: {error}") from None


def _read_member(member: IO[bytes] | None, deadline: float) -> None:
    while member is not None:
        if time.monotonic() > deadline:
            raise ReadFailed(_TIMED_OUT)
        if not member.read(1 << 20):
            return


def _dumped_by(lines: Sequence[str]) -> str:
    for line in lines:
        if match := _DUMPED_BY.match(line):
            return match[1]
    return "unknown"


def _check_plain(backup: Backup, tables: Tables, deadline: float) -> CheckResult:
    name = "backup_restorable"
    why = "plain SQL: pg_restore cannot read it (the plan's `pg_restore --list` check fails on it)"
    try:
        scan = _scan_plain(backup, tables, deadline)
    except ReadFailed as error:
        return failed(name, f"{why}; {error}", reader="python")
    missing = [t for t in tables.names if t not in scan.created]
    if missing:
        gone = ", ".join(f"{tables.schema}.{t}" for t in missing)
        return failed(name, f"{why}; no CREATE TABLE {gone}", reader="python")
    if not scan.complete:
        return failed(name, f"{why}; cut short: no '{PLAIN_END}' at its end", reader="python")
    return passed(
        name,
        f"{why}; read to the end: pg_dump {scan.dumped_by} header, CREATE TABLE "
        f"{tables.qualified()}, end marker",
        reader="python",
        dumped_by=scan.dumped_by,
    )


@dataclass(frozen=True)
class PlainScan:
    """What reading a plain dump found."""

    created: frozenset[str]
    complete: bool
    dumped_by: str


def _scan_plain(backup: Backup, tables: Tables, deadline: float) -> PlainScan:
    patterns = {t: _create_table(tables.schema, t) for t in tables.names}
    created: set[str] = set()
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    head: list[str] = []
    for number, line in enumerate(_lines(backup, deadline)):
        if number % 10_000 == 0 and time.monotonic() > deadline:
            raise ReadFailed(_TIMED_OUT)
        if number < 10:
            head.append(line)
        created.update(
            t for t, p in patterns.items() if line.startswith("CREATE") and p.match(line)
        )
        if line.strip():
            tail.append(line.rstrip("\n"))
    return PlainScan(frozenset(created), PLAIN_END in tail, _dumped_by(head))


def _lines(backup: Backup, deadline: float) -> Iterator[str]:
    """The dump's lines, each cut to its first MAX_LINE_BYTES (a COPY row of a large value, or
    a gzip bomb's one endless line, is read past in pieces, never held whole); a gzip file cut
    short raises ReadFailed."""
    try:
        with open_regular(backup.path) as raw:
            if backup.format == "plain.gz":
                with gzip.GzipFile(fileobj=raw) as file:
                    yield from _heads_of_lines(file, deadline)
            else:
                yield from _heads_of_lines(raw, deadline)
    except (OSError, EOFError) as error:
        raise ReadFailed(f"cannot read it to the end: {error}") from None


def _heads_of_lines(file: gzip.GzipFile | BinaryIO, deadline: float) -> Iterator[str]:
    while line := file.readline(MAX_LINE_BYTES):
        yield line.decode("utf-8", errors="replace")
        while not line.endswith(b"\n") and len(line) == MAX_LINE_BYTES:  # the rest of it
            if time.monotonic() > deadline:
                raise ReadFailed(_TIMED_OUT)
            line = file.readline(MAX_LINE_BYTES)


def _create_table(schema: str, table: str) -> re.Pattern[str]:
    """CREATE TABLE schema.table ( as pg_dump writes it, quoting names only where needed."""
    return re.compile(rf"^CREATE (?:UNLOGGED )?TABLE {_ident(schema)}\.{_ident(table)} \(")


def _ident(name: str) -> str:
    quoted = re.escape('"' + name.replace('"', '""') + '"')
    return f"(?:{re.escape(name)}|{quoted})" if _BARE_IDENTIFIER.fullmatch(name) else quoted
