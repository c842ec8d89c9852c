"""Per-table-shape row encoders, generated once as straight-line Python (the hot path).

A generic loop (``zip`` over encoders and values, one union check per step) costs about as
much as the encoding itself for a handful of columns. For each table shape the connector
instead compiles two small functions whose body names every column, the way ``dataclasses``
and ``namedtuple`` generate their methods. The generated source contains only positional
variable names (``v0``, ``b3``...): column names and values never reach ``exec``.

- ``parts(row)``: the optional-field encoding of each value (``b"\\x00"`` for NULL);
- ``keyed(row)``: ``(framed key, Value body)`` of a row;
- ``pair(old, new)``: ``(old key, before body, new key, after body)`` of an update, encoding
  a value the images share once and taking unchanged TOAST values (``UNCHANGED``) from the
  old image (REPLICA IDENTITY FULL guarantees it is complete).

Both raise ``ValueError``/``TypeError`` on any value their encoders reject; the caller then
takes its careful per-column path, which names the column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from datamesh.cdc.avro_binary import NULL_BRANCH
from datamesh.cdc.pgoutput import UNCHANGED, Row

Encoder = Callable[[bytes], bytes]
PartsFn = Callable[[Row], list[bytes]]
KeyedFn = Callable[[Row], tuple[bytes, bytes]]
PairFn = Callable[[Row, Row], tuple[bytes, bytes, bytes, bytes]]


def _compile(source: str, name: str, encoders: Sequence[Encoder], frame: bytes) -> Any:
    namespace: dict[str, Any] = {f"e{i}": enc for i, enc in enumerate(encoders)}
    namespace.update(NULL=NULL_BRANCH, U=UNCHANGED, FRAME=frame)
    exec(compile(source, f"<cdc rowcode {name}>", "exec"), namespace)
    return namespace[name]


def compile_parts(encoders: Sequence[Encoder]) -> PartsFn:
    """``parts(row) -> list[bytes]`` for a shape with these present-value encoders."""
    n = len(encoders)
    values = ", ".join(f"v{i}" for i in range(n)) + ","
    items = ", ".join(f"NULL if v{i} is None else e{i}(v{i})" for i in range(n))
    source = f"def parts(row):\n    {values} = row\n    return [{items}]\n"
    fn: PartsFn = _compile(source, "parts", encoders, b"")
    return fn


def compile_keyed(encoders: Sequence[Encoder], key: Sequence[int], frame: bytes) -> KeyedFn:
    """``keyed(row) -> (framed key, Value body)`` for a shape; ``key``: key positions."""
    n = len(encoders)
    lines = ["def keyed(row):", f"    {', '.join(f'v{i}' for i in range(n))}, = row"]
    lines += [f"    p{i} = NULL if v{i} is None else e{i}(v{i})" for i in range(n)]
    body = ", ".join(f"p{i}" for i in range(n))
    lines.append(f"    return FRAME + {' + '.join(f'p{k}[1:]' for k in key)}, b''.join(({body},))")
    fn: KeyedFn = _compile("\n".join(lines) + "\n", "keyed", encoders, frame)
    return fn


def compile_pair(encoders: Sequence[Encoder], key: Sequence[int], frame: bytes) -> PairFn:
    """``pair(old, new)`` for a shape; ``key`` are the primary-key positions."""
    n = len(encoders)
    lines = [
        "def pair(old, new):",
        f"    {', '.join(f'o{i}' for i in range(n))}, = old",
        f"    {', '.join(f'n{i}' for i in range(n))}, = new",
    ]
    for i in range(n):
        lines.append(f"    b{i} = NULL if o{i} is None else e{i}(o{i})")
        lines.append(
            f"    a{i} = b{i} if n{i} == o{i} or n{i} is U else "
            f"(NULL if n{i} is None else e{i}(n{i}))"
        )
    old_key = " + ".join(f"b{k}[1:]" for k in key)
    new_key = " + ".join(f"a{k}[1:]" for k in key)
    before = ", ".join(f"b{i}" for i in range(n))
    after = ", ".join(f"a{i}" for i in range(n))
    lines.append(
        f"    return (FRAME + {old_key}, b''.join(({before},)), "
        f"FRAME + {new_key}, b''.join(({after},)))"
    )
    fn: PairFn = _compile("\n".join(lines) + "\n", "pair", encoders, frame)
    return fn
