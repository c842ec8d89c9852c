"""``audit:`` on a sink that cannot be audited is a declaration error.

Checked where the declarations meet the audit (``mesh validate``, the Dagster definitions),
not in :mod:`datamesh.specs` (auditability reads processors' SQL through the Flink package,
which the specs must not depend on).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from datamesh.audit.auditability import analyse
from datamesh.errors import SpecError
from datamesh.specs.product import DataProduct


def check_declared(products: Sequence[DataProduct]) -> None:
    """Raise :class:`SpecError` (file, field, line, fix) for the first sink declaring
    ``audit:`` that is not auditable."""
    by_id = {p.id: p for p in products}
    for p in products:
        if p.audit_every is None or not p.is_sink:
            continue
        found = analyse(p, by_id)
        if found.auditable:
            continue
        siblings = [q for q in products if q.declared_in == p.declared_in]
        index = siblings.index(p)
        raise SpecError(
            str(p.declared_in),
            f"products[{index}].audit",
            f"{p.id} declares `audit:` but is not auditable: {found.reason}",
            "remove `audit:` (only a sink whose key maps to its CDC source's key through "
            "key-preserving steps can be audited; `mesh validate` lists them)",
            _line(p),
        )


def _line(p: DataProduct) -> int | None:
    """The line of the product's ``audit:`` key in its file (None when not found)."""
    try:
        lines = p.declared_in.read_text().splitlines()
    except OSError:
        return None
    start = next(
        (i for i, line in enumerate(lines) if re.match(rf"\s*-?\s*name:\s*{p.name}\s*$", line)),
        None,
    )
    if start is None:
        return None
    for i in range(start + 1, len(lines)):
        if re.match(r"\s*-\s*name:", lines[i]):
            return None
        if re.match(r"\s*audit:", lines[i]):
            return i + 1
    return None
