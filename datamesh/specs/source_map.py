"""Maps a field path inside a YAML file (``("products", 2, "owners", 0)``) to its line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml


class SourceMap:
    """Line numbers of the YAML nodes of every loaded declaration file."""

    def __init__(self) -> None:
        self._roots: dict[Path, yaml.Node] = {}

    def add(self, file: Path, root: yaml.Node) -> None:
        """Remember the composed node tree of ``file``."""
        self._roots[file] = root

    def line(self, file: Path, loc: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node on ``loc`` that exists, or None."""
        node = self._roots.get(file)
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def field_path(loc: Sequence[str | int]) -> str:
    """``("products", 2, "owners", 0)`` -> ``products[2].owners[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
