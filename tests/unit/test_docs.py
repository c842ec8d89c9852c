"""The docs match the code: the architecture page's module map names only paths that exist and
every top-level package and module of ``datamesh/``; every ``mesh`` command written in the
README or under ``docs/`` is one the CLI's parser accepts; every docs page is linked."""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from datamesh import cli
from datamesh.endpoints import PROJECT_ROOT
from datamesh.specs import load_products

DOCS = PROJECT_ROOT / "docs"
README = PROJECT_ROOT / "README.md"
ARCHITECTURE = DOCS / "architecture.md"
PAGES = sorted(DOCS.glob("*.md"))
# what a placeholder in a documented command stands for, when the command is parsed
PLACEHOLDERS = {  # longest first: `<domain>.<product>` before `<product>`
    "<domain>.<product>.<column>": "studio.movies.title",
    "<domain>.<product>": "studio.movies",
    "<database>": "studio",
    "<product>": "studio.movies",
    "<words>": "movies",
    "<connector>": "studio-studio-cdc",
}


def module_map() -> list[str]:
    """The backticked paths in the first column of the module map's table."""
    text = ARCHITECTURE.read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_every_path_in_the_module_map_exists() -> None:
    paths = module_map()
    assert len(paths) > 20, "the module map table was not found"
    missing = [p for p in paths if not (PROJECT_ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that no longer exist: {missing}"


def test_every_top_level_part_of_datamesh_is_in_the_module_map() -> None:
    core = PROJECT_ROOT / "datamesh"
    parts = [
        f"datamesh/{p.name}/" if p.is_dir() else f"datamesh/{p.name}"
        for p in sorted(core.iterdir())
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name != "__init__.py")
    ]
    mapped = set(module_map())
    missing = [p for p in parts if p not in mapped]
    assert not missing, f"add these to the module map of docs/architecture.md: {missing}"


def documented_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for each ``mesh ...`` on a line of a fenced code block (``where``:
    ``<page>``; trailing ``# comments`` dropped) or in an inline code span (``<page> prose``)
    of the README and the docs pages."""
    found: list[tuple[str, str]] = []
    for page in [README, *PAGES]:
        text = page.read_text()
        fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
        for block in fenced:
            for line in block.splitlines():
                hit = re.match(r"\s*(?:\S*/)?(?:\.venv/bin/)?(mesh\s.*)", line)
                if hit and not line.lstrip().startswith("#"):
                    found.append((page.name, hit.group(1).split("  #")[0].split(" # ")[0]))
        prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        for span in re.findall(r"`((?:\.venv/bin/)?mesh [^`]+)`", prose):
            found.append((f"{page.name} prose", span.removeprefix(".venv/bin/")))
    return found


def variants(command: str) -> list[list[str]]:
    """The argument lists a documented command stands for: ``a|b`` alternatives expanded,
    ``[...]`` optional parts both left out and put in, placeholders filled."""
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    optional = re.findall(r"\[([^\[\]]+)\]", command)
    bare = re.sub(r"\s*\[[^\[\]]+\]", "", command)
    full = re.sub(r"\[([^\[\]]+)\]", r"\1", command)
    out: list[list[str]] = []
    for text in {bare, full} if optional else {command}:
        words = shlex.split(text)[1:]
        for shell in (">", "|", "&&", ";"):  # what follows is the shell's, not mesh's
            words = words[: words.index(shell)] if shell in words else words
        words = [w for w in words if w not in ("...", "…")]
        choices = [w.split("|") if re.fullmatch(r"[\w-]+(\|[\w-]+)+", w) else [w] for w in words]
        out += [list(c) for c in itertools.product(*choices)]
    return out


COMMANDS = documented_commands()


def test_the_docs_write_mesh_commands() -> None:
    pages = {where for where, _ in COMMANDS}
    assert len(COMMANDS) > 40 and "README.md" in pages and "production.md" in pages


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w}:{c}" for w, c in COMMANDS])
def test_every_documented_mesh_command_parses(where: str, command: str) -> None:
    for argv in variants(command):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parsed = cli.parser().parse_args(argv)
        except SystemExit:
            # prose may name a command without its arguments (`mesh flink status`); a code
            # block is run as written, and nothing may be unknown or invalid anywhere
            named_only = "the following arguments are required" in err.getvalue()
            if not (where.endswith(" prose") and named_only):
                pytest.fail(f"{where}: `{command}` -> mesh {shlex.join(argv)}: {err.getvalue()}")
            continue
        assert isinstance(parsed, argparse.Namespace)


def test_a_wrong_command_is_caught() -> None:
    # the check above can fail: a flag the parser does not know is refused
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        cli.parser().parse_args(variants("mesh plan --no-such-flag")[0])
    assert variants("mesh cdc start|stop") == [["cdc", "start"], ["cdc", "stop"]]
    assert sorted(variants("mesh snapshot <product> [--where x]")) == [
        ["snapshot", "studio.movies"],
        ["snapshot", "studio.movies", "--where", "x"],
    ]


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = README.read_text()
    unlinked = [p.name for p in PAGES if f"(docs/{p.name})" not in readme]
    assert not unlinked, f"link these pages from README.md: {unlinked}"


def example_files() -> dict[str, str]:
    """``{<domain>/<file>: text}`` of every fenced block marked ``<!-- file: ... -->``."""
    files: dict[str, str] = {}
    for page in PAGES:
        pattern = r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)^```"
        for name, body in re.findall(pattern, page.read_text(), flags=re.MULTILINE | re.DOTALL):
            assert name not in files, f"{page.name}: {name} is shown twice"
            files[name] = body
    return files


def test_the_example_domain_loads_beside_the_demo(domains_copy: Callable[[], Path]) -> None:
    files = example_files()
    assert "payments/products.yaml" in files
    folder = domains_copy()
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body)
    products = {p.id: p for p in load_products(folder)}
    declared = {p["name"] for p in yaml.safe_load(files["payments/products.yaml"])["products"]}
    assert {f"payments.{n}" for n in declared} <= set(products)
    assert products["payments.invoices_by_movie"].inputs == ("payments.invoices", "studio.movies")
