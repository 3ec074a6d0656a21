"""Reading a configuration file's YAML as hostile input: bounded, unambiguous, with line numbers.

A configuration file may come from anyone who can write to the node's config folder or a
deployment repository, so ``read_yaml`` refuses, with one ``YamlRefused`` naming the line, what
a plain ``yaml.safe_load`` would turn into a hang, a crash or a silent surprise:

- a file larger than ``MAX_BYTES`` (1 MiB; a real configuration is a few kilobytes), read no
  further than that, and a file that is not UTF-8 text;
- alias expansion blow-ups ("billion laughs": ``a: &a [x, x]``, ``b: &b [*a, *a]`` …): the
  document's size with every alias counted as the whole node it names must stay under
  ``MAX_NODES``, measured on the composed node graph before anything is built from it;
- nesting deeper than ``MAX_DEPTH`` levels (which would otherwise exhaust Python's recursion
  while the document is composed), checked while composing, before the recursion goes deep;
- the same key twice in one mapping (YAML says keys are unique; PyYAML keeps the last one
  silently, so ``secret:`` written twice would pick one without a word). Keys merged in with
  ``<<: *defaults`` may be overridden, as YAML intends;
- an empty document (nothing but comments or whitespace): a node without settings is a mistake.

Only the safe loader's tags are known (no Python objects). ``read_yaml`` returns the data and a
map from each key path to its line, for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "YamlDocument", "YamlRefused", "read_yaml"]

MAX_BYTES = 1_048_576
MAX_DEPTH = 64
MAX_NODES = 100_000


class YamlRefused(Exception):
    """The file cannot be read as a configuration; ``line`` (1-based) where known."""

    def __init__(self, message: str, line: int | None = None, path: str = "") -> None:
        self.message = message
        self.line = line
        self.path = path  # the key path inside the document, where known
        super().__init__(message)


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    lines: dict[tuple[str, ...], int]  # key path -> 1-based line of its key


class _Loader(yaml.SafeLoader):
    """The safe loader, with a depth limit while composing and unique keys while constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlRefused(f"nested deeper than {MAX_DEPTH} levels", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the safe constructor says so below
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:  # the same key written two ways (1 and 0x1)
                    raise _duplicate(str(key), (), first, line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _measure(root: Node) -> None:
    """Refuse a document whose aliases, expanded, would exceed ``MAX_NODES`` values or
    ``MAX_DEPTH`` levels, or refer to a value containing them; nothing is expanded to tell."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (size, depth), aliases expanded
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = _children(node)
            size = 1 + sum(done[id(c)][0] for c in children)
            depth = 1 + max((done[id(c)][1] for c in children), default=0)
            active.discard(key)
            done[key] = (size, depth)
            line = node.start_mark.line + 1
            if size > MAX_NODES:
                raise YamlRefused(
                    f"aliases expand to more than {MAX_NODES} values (an alias expansion "
                    "blow-up?): write the values out",
                    line,
                )
            if depth > MAX_DEPTH:
                raise YamlRefused(f"aliases expand to more than {MAX_DEPTH} levels", line)
            continue
        if key in done:
            continue
        if key in active:
            raise YamlRefused(
                "an alias refers to a value that contains it (a recursive alias)",
                node.start_mark.line + 1,
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in done)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _duplicate(key: str, path: tuple[str, ...], first: int, line: int) -> YamlRefused:
    return YamlRefused(
        f"duplicate key {key[:60]!r} (first on line {first}): each key may appear once",
        line,
        ".".join(path),
    )


def _lines(root: Node) -> dict[tuple[str, ...], int]:
    """Each key path's line; refuses a key written twice in one mapping, naming its path."""
    index: dict[tuple[str, ...], int] = {}
    stack: list[tuple[Node, tuple[str, ...]]] = [(root, ())]
    while stack and len(index) <= MAX_NODES:
        node, path = stack.pop()
        if isinstance(node, MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    sub = (*path, str(key.value))
                    line = key.start_mark.line + 1
                    name = (key.tag, str(key.value))
                    if name in seen:
                        raise _duplicate(str(key.value), sub, seen[name], line)
                    seen[name] = line
                    index.setdefault(sub, line)
                    stack.append((value, sub))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                sub = (*path, str(i))
                index.setdefault(sub, item.start_mark.line + 1)
                stack.append((item, sub))
    return index


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlRefused(f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise YamlRefused(f"file is larger than {MAX_BYTES} bytes: not a configuration")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlRefused("not UTF-8 text", line) from None


def read_yaml(path: Path) -> YamlDocument:
    """The configuration document at ``path``, or ``YamlRefused`` (see the module docstring)."""
    text = _read_text(path)
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # refuses control characters at once
        root = loader.get_single_node()
        if root is None:
            raise YamlRefused("file is empty: expected the node's settings (a mapping)", 1)
        _measure(root)
        lines = _lines(root)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "unreadable"
        if isinstance(exc, ConstructorError):
            what = f"cannot be read: {what}"
        raise YamlRefused(f"not valid YAML: {what}", mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        char = exc.character
        if not isinstance(char, int):
            char = ord(str(char)[:1] or "?")
        what = f"character #x{char:04x} is not allowed in YAML (a binary file?)"
        raise YamlRefused(f"not valid YAML: {what}", line) from None
    except yaml.YAMLError:
        raise YamlRefused("not valid YAML") from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:  # "---" alone, or "null": no settings either
        raise YamlRefused("file is empty: expected the node's settings (a mapping)", 1)
    return YamlDocument(data, lines)
