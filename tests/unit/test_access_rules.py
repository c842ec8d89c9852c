"""Access at load: a cross-domain input must be public, or internal and allowed; never private."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from datamesh.errors import SpecError
from datamesh.specs import load_products
from datamesh.specs.access_rules import access_problem
from datamesh.specs.product import DataProduct, Slo, TopicSettings
from mesh_assets import DOMAINS_DIR


def _product(
    pid: str, access: str = "internal", allow: tuple[str, ...] = (), inputs: tuple[str, ...] = ()
) -> DataProduct:
    domain, name = pid.split(".")
    return DataProduct(
        domain=domain,
        name=name,
        kind="processor",
        description="x",
        owners=(f"team:{domain}",),
        access=access,  # type: ignore[arg-type]
        tier=2,
        slo=Slo(),
        key=(),
        inputs=inputs,
        value_schema=None,
        topic=TopicSettings(1, 1, 3_600_000, "delete"),
        compatibility="BACKWARD",
        declared_in=Path(f"/decl/{domain}/products.yaml"),
        allow=allow,
    )


ACCESS_CASES = [
    # (id, producer access, producer allow, reader id, refused?, words of problem and fix)
    ("same domain internal", "internal", (), "studio.catalog", False, ()),
    ("same domain private", "private", (), "studio.catalog", False, ()),
    ("public to another domain", "public", (), "content.titles", False, ()),
    ("internal allowed", "internal", ("content",), "content.titles", False, ()),
    ("internal allowing others", "internal", ("search",), "content.titles", True,
     ("allows search", "add `allow: [search, content]` to studio.productions in "
      "/decl/studio/products.yaml", "make it `access: public`")),
    ("internal allowing none", "internal", (), "content.titles", True,
     ("internal to domain studio and allows no other domain", "add `allow: [content]`")),
    ("private to another domain", "private", (), "content.titles", True,
     ("private to domain studio", "never an input of another domain",
      "`access: internal` with `allow: [content]`", "remove studio.productions from "
      "content.titles's inputs")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "access", "allow", "reader", "refused", "words"),
    ACCESS_CASES,
    ids=[c[0] for c in ACCESS_CASES],
)
def test_who_may_read_a_product(
    case: str,
    access: str,
    allow: tuple[str, ...],
    reader: str,
    refused: bool,
    words: tuple[str, ...],
) -> None:
    producer = _product("studio.productions", access, allow)
    consumer = _product(reader, inputs=(producer.id,))
    problem = access_problem(consumer, producer)
    assert (problem is not None) == refused, problem
    if problem is not None:
        text = " | ".join(problem)
        # both products and both domains, in the problem itself
        for name in (consumer.id, f"domain {consumer.domain}", producer.id, "domain studio"):
            assert name in problem[0], problem[0]
        for word in words:
            assert word in text, text


def test_the_demo_reads_across_domains_only_what_it_may() -> None:
    by_id = {p.id: p for p in load_products(DOMAINS_DIR)}
    assert by_id["studio.movies"].access == "public"
    assert "studio.movies" in by_id["content.localized_titles"].inputs


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


PRODUCTIONS_ACCESS = (
    "    access: internal\n"
    "    allow: [analytics]  # analytics counts productions started per day and region\n"
)
# analytics reads studio.movies instead of studio.productions: the cases below make
# productions private, and the reader they are about is content's.
ANALYTICS_OFF_PRODUCTIONS = [
    ("analytics/products.yaml", "inputs: [studio.productions]", "inputs: [studio.movies]"),
    (
        "analytics/products.yaml",
        "studio.productions: [started_on, region, budget]",
        "studio.movies: [id]",
    ),
]
LOAD_CASES = [
    # (id, edits [(file, old, new)], file and line of the error, field, problem, fix words)
    (
        "internal input of another domain",
        [("content/products.yaml", "inputs: [studio.movies, content.artwork]",
          "inputs: [studio.movies, content.artwork, studio.productions]")],
        ("content/products.yaml", "studio.productions]"),
        r"products\[1\]\.inputs\[2\]",
        ("content.localized_titles (domain content) reads studio.productions",
         "internal to domain studio"),
        ("add `allow: [analytics, content]` to studio.productions in", "studio/products.yaml"),
    ),
    (
        "sink of another domain's private product",
        [*ANALYTICS_OFF_PRODUCTIONS,
         ("studio/products.yaml", PRODUCTIONS_ACCESS + "    tier: 2\n",
          "    access: private\n    tier: 2\n"),
         ("content/products.yaml", "inputs: [content.localized_titles]\n    access: public",
          "inputs: [studio.productions]\n    access: public")],
        ("content/products.yaml", "inputs: [studio.productions]"),
        r"products\[2\]\.inputs\[0\]",
        ("content.title_catalog (domain content) reads studio.productions",
         "private to domain studio"),
        ("`access: internal` with `allow: [content]`",),
    ),
    (
        "public made private under its reader",
        [("studio/products.yaml", "    access: public\n", "    access: private\n")],
        ("content/products.yaml", "inputs: [studio.movies, content.artwork]"),
        r"products\[1\]\.inputs\[0\]",
        ("content.localized_titles (domain content) reads studio.movies",),
        ("studio.movies in", "studio/products.yaml"),
    ),
    (
        "allow on a private product",
        [*ANALYTICS_OFF_PRODUCTIONS,
         ("studio/products.yaml", PRODUCTIONS_ACCESS,
          "    access: private\n    allow: [x]\n")],
        ("studio/products.yaml", "allow: [x]"),
        r"products\[1\]\.allow",
        ("is private (its own domain only) but allows x",),
        ("make it `access: internal`",),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "edits", "where", "field", "problem", "fix"),
    LOAD_CASES,
    ids=[c[0] for c in LOAD_CASES],
)
def test_an_access_violation_is_refused_at_load(
    domains_copy: Callable[[], Path],
    case: str,
    edits: list[tuple[str, str, str]],
    where: tuple[str, str],
    field: str,
    problem: tuple[str, ...],
    fix: tuple[str, ...],
) -> None:
    root = domains_copy()
    for file, old, new in edits:
        _edit(root / file, old, new)
    with pytest.raises(SpecError) as info:
        load_products(root)
    err = info.value
    assert re.fullmatch(field, err.field), str(err)
    for words in problem:
        assert words in err.problem, str(err)
    for words in fix:
        assert words in (err.fix or ""), str(err)
    file, needle = where
    assert (err.file, err.line) == (str(root / file), _line_of(root / file, needle)), str(err)
