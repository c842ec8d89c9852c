"""``make dev DEMO_RATE=…`` (the README's way to change the generator's rate) reaches ``mesh dev``
as ``--rate``, which the CLI accepts and parses as that rate."""

from __future__ import annotations

import shlex
import subprocess

from datamesh import cli
from datamesh.endpoints import PROJECT_ROOT


def _mesh_dev_line(*make_args: str) -> list[str]:
    """The ``mesh dev`` command ``make dev`` would run (``make -n``: nothing is executed)."""
    shown = subprocess.run(
        ["make", "-n", "dev", *make_args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (line,) = [ln for ln in shown.splitlines() if "/mesh dev " in ln]
    argv = shlex.split(line)
    return argv[argv.index("dev") :]


def test_demo_rate_reaches_mesh_dev() -> None:
    argv = _mesh_dev_line("DEMO_RATE=200/s")
    assert argv[argv.index("--rate") + 1] == "200/s"
    assert cli.parser().parse_args(argv).rate == "200/s"


def test_the_default_rate_is_modest() -> None:
    argv = _mesh_dev_line()
    assert argv[argv.index("--rate") + 1] == "5/s"
