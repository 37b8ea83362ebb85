"""Configuration files read as a sandbox: bounded in size, nesting and alias expansion, UTF-8,
no duplicate keys. Every problem is one ConfigError line naming the file, line and column.

The config and the web-config are small hand-written files; anything far beyond that is a
mistake or an attack (a 20,000-deep list, nine levels of aliases expanding to a billion nodes)
and is refused before a value is built from it, let alone rendered in a message.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from monitor.config.files import FileProblem, read_bounded

__all__ = ["FileProblem", "read_yaml"]

MAX_BYTES = 1 << 20  # 1 MiB: the example configuration is 8 KiB
MAX_DEPTH = 32  # nesting levels; the configuration uses 5
MAX_NODES = 100_000  # values once every alias is expanded


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and duplicate keys as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """Count the nesting; refuse it past MAX_DEPTH (PyYAML itself would recurse on)."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping; the second occurrence of a key is an error, not a silent overwrite."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = key_node.value
                if key in seen:
                    raise ConstructorError(
                        None, None, f"duplicate key {key[:40]!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def expanded_size(node: Node, limit: int = MAX_NODES) -> int:
    """Nodes once every alias is expanded (an alias is the node it names, again), counted
    without expanding: each distinct node once, memoized. Stops counting past limit."""
    sizes: dict[int, int] = {}

    def size(current: Node) -> int:
        known = sizes.get(id(current))
        if known is not None:
            return known
        sizes[id(current)] = limit + 1  # an alias to a node being counted: endless
        total = 1
        if isinstance(current, SequenceNode):
            for child in current.value:
                total = min(limit + 1, total + size(child))
        elif isinstance(current, MappingNode):
            for key, value in current.value:
                total = min(limit + 1, total + size(key) + size(value))
        sizes[id(current)] = total
        return total

    return size(node)


def read_yaml(path: str) -> Any:
    """The YAML document in the file, built only once it passed every bound."""
    raw = read_bounded(path, MAX_BYTES, "config file")
    text = decoded(path, raw)
    try:
        loader = BoundedLoader(text)  # reads the whole text for characters YAML refuses
    except ReaderError as error:
        raise FileProblem(f"{path}:{located(text, error.position)}{refused(error)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_NODES:
            mark = node.start_mark
            raise FileProblem(
                f"{path}:{mark.line + 1}:{mark.column + 1}: aliases expand to more than "
                f"{MAX_NODES} values: not a configuration file"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise FileProblem(f"{path}:{position(error)}invalid YAML: {problem(error)}") from None
    except (ValueError, RecursionError) as error:  # an integer of 5,000 digits, say
        raise FileProblem(f"{path}: invalid YAML: {str(error)[:80]}") from None
    finally:
        loader.dispose()


def decoded(path: str, raw: bytes) -> str:
    """The file's text; a byte that is not UTF-8 is named with its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        byte = raw[error.start]
        raise FileProblem(f"{path}:{line}:{column}: not UTF-8 (byte 0x{byte:02x})") from None


def located(text: str, index: int) -> str:
    """'line:column: ' of a character's index in the text, 1-based."""
    before = text[:index]
    return f"{before.count(chr(10)) + 1}:{index - (before.rfind(chr(10)) + 1) + 1}: "


def refused(error: ReaderError) -> str:
    """PyYAML's refusal of a character, as one line: 'character 0x00 is not allowed in YAML'."""
    character = error.character
    code = ord(character) if isinstance(character, str) else int(character)
    return f"character 0x{code:02x} is not allowed in YAML"


def position(error: yaml.YAMLError) -> str:
    """'line:column: ' of a YAML error, 1-based, when PyYAML knows it."""
    mark = getattr(error, "problem_mark", None)
    return f"{mark.line + 1}:{mark.column + 1}: " if mark is not None else " "


def problem(error: yaml.YAMLError) -> str:
    """PyYAML's one-line description of what is wrong, cut short."""
    return str(getattr(error, "problem", None) or error).splitlines()[0][:120]
