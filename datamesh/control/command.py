"""``mesh plan`` and ``mesh apply``: the controller on the command line.

``mesh plan [--json] [--exit-code]`` prints every action with the downstream products it affects.
Exit status: 1 when the plan cannot be made whole (a system could not be read) or shows drift or
a refusal; with ``--exit-code`` (for CI gates in domain repositories) 2 when any consumer would
be broken, else 1 for drift or an unreadable system, else 0.

``mesh apply [--allow-delete] [--repair]`` validates everything, then carries the plan out (see
:mod:`datamesh.control.apply`); exit 1 when it was refused or an action failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from datamesh.control.actions import Action
from datamesh.control.apply import Options, apply
from datamesh.control.observe import observe
from datamesh.control.plan import plan
from datamesh.specs.product import DataProduct


def add_plan_arguments(sub: argparse.ArgumentParser) -> None:
    """Flags of ``mesh plan``."""
    sub.add_argument("--json", action="store_true", help="machine-readable plan")
    sub.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 2 when a consumer would break, 1 on drift, 0 otherwise (CI gates)",
    )


def add_apply_arguments(sub: argparse.ArgumentParser) -> None:
    """Flags of ``mesh apply``."""
    sub.add_argument(
        "--allow-delete", action="store_true", help="let retirements delete topics and tables"
    )
    sub.add_argument("--repair", action="store_true", help="also repair drift (e.g. topic configs)")


def run_plan(args: argparse.Namespace, products: Sequence[DataProduct]) -> int:
    """``mesh plan``."""
    began = time.monotonic()
    observed = observe(products)
    actions = plan(products, observed)
    elapsed = time.monotonic() - began
    if args.json:
        doc = {
            "actions": [a.to_json() for a in actions],
            "summary": summary(actions),
            "unreachable": dict(observed.unreachable),
            "seconds": round(elapsed, 3),
        }
        print(json.dumps(doc, indent=2))
    else:
        for line in render(actions):
            print(line)
        for system, why in sorted(observed.unreachable.items()):
            print(f"could not read {system}: {why} (its resources are not planned)")
        print(_summary_line(actions, len(products), elapsed))
    broken = any(a.breaks for a in actions)
    drift = any(a.verb == "drift" for a in actions) or bool(observed.unreachable)
    if args.exit_code and broken:
        return 2
    return 1 if drift or broken else 0


def run_apply(args: argparse.Namespace, products: Sequence[DataProduct]) -> int:
    """``mesh apply``."""
    options = Options(allow_delete=args.allow_delete, repair=args.repair)
    report = apply(products, options)
    if report.refusals:
        print("apply refused; nothing was changed:", file=sys.stderr)
        for reason in report.refusals:
            print(f"  {reason}", file=sys.stderr)
        return 1
    skipped = [o for o in report.outcomes if o.status == "skipped"]
    if not report.outcomes:
        print(f"nothing to do: {len(products)} products match their declarations")
    elif report.ok:
        print(
            f"applied {report.changed} change{'s' if report.changed != 1 else ''}"
            + (f"; {len(skipped)} skipped (see above)" if skipped else "")
        )
    return 0 if report.ok else 1


def render(actions: Sequence[Action]) -> list[str]:
    """Plan lines grouped by product."""
    out: list[str] = []
    current = None
    for a in actions:
        if a.product != current:
            current = a.product
            out.append(a.product or "(no product)")
        out.append(f"  {a.describe()}")
    return out


def summary(actions: Sequence[Action]) -> dict[str, int]:
    """Counts by kind of action."""
    return {
        "changes": sum(1 for a in actions if a.changes),
        "drift": sum(1 for a in actions if a.verb == "drift"),
        "refused": sum(1 for a in actions if a.verb == "refuse"),
        "breaking": sum(1 for a in actions if a.breaks),
    }


def _summary_line(actions: Sequence[Action], products: int, elapsed: float) -> str:
    s = summary(actions)
    if not actions:
        return f"nothing to do: {products} products match their declarations ({elapsed:.2f}s)"
    return (
        f"{s['changes']} to change, {s['drift']} drift, {s['refused']} refused, "
        f"{s['breaking']} breaking a consumer ({products} products, {elapsed:.2f}s); "
        "`mesh apply` carries out the changes"
    )
