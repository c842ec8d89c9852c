"""Who may read a product: ``access`` and ``allow`` checked on every cross-domain input at load.

A product's domain may always read its own domain's products. Another domain may read it when
it is ``public``, or ``internal`` with that domain listed in ``allow``; a ``private`` product is
never an input of another domain. Every input counts: a processor's ``inputs`` (which include
everything its ``consumes`` names, checked elsewhere) and a sink's one input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datamesh.errors import SpecError
    from datamesh.specs.product import DataProduct

Fail = Callable[[list[str | int], str, str], "SpecError"]


def may_read(reader_domain: str, producer: DataProduct) -> bool:
    """True when products of ``reader_domain`` may read ``producer``."""
    if reader_domain == producer.domain or producer.access == "public":
        return True
    return producer.access == "internal" and reader_domain in producer.allow


def access_problem(consumer: DataProduct, producer: DataProduct) -> tuple[str, str] | None:
    """``(problem, fix)`` when ``consumer`` may not read its input ``producer``, else None.

    Both name the two products and their domains; the fix names the producer's file.
    """
    if may_read(consumer.domain, producer):
        return None
    reader, owner = consumer.domain, producer.domain
    where = f"{producer.id} in {producer.declared_in}"
    if producer.access == "private":
        return (
            f"{consumer.id} (domain {reader}) reads {producer.id}, which is private to domain "
            f"{owner}: a private product is never an input of another domain",
            f"make {where} `access: internal` with `allow: [{reader}]` (or `access: public`), "
            f"or remove {producer.id} from {consumer.id}'s inputs",
        )
    allowed = ", ".join(producer.allow) or "no other domain"
    return (
        f"{consumer.id} (domain {reader}) reads {producer.id}, which is internal to domain "
        f"{owner} and allows {allowed}",
        f"add `allow: [{', '.join([*producer.allow, reader])}]` to {where}, "
        f"or make it `access: public`",
    )


def check_access(p: DataProduct, by_id: Mapping[str, DataProduct], fail: Fail) -> None:
    """Raise (through ``fail(loc, problem, fix)``) the first input ``p`` may not read.

    Inputs must already be known to exist; ``allow`` on a private product is refused too,
    since it would suggest a grant that is never given.
    """
    if p.access == "private" and p.allow:
        raise fail(
            ["allow"],
            f"{p.id} is private (its own domain only) but allows {', '.join(p.allow)}",
            "make it `access: internal` to let the listed domains read it, or remove `allow`",
        )
    for j, ref in enumerate(p.inputs):
        problem = access_problem(p, by_id[ref])
        if problem is not None:
            raise fail(["inputs", j], *problem)
