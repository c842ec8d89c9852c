"""``python -m datamesh.demo --rate 5/s [--schema-every 600]``: the generator process that
``mesh demo`` starts in the background (:func:`datamesh.demo.generator.run`)."""

from __future__ import annotations

import argparse
import functools

from datamesh.demo import generator
from datamesh.demo.rate import DEFAULT_RATE, parse_rate


def main() -> None:
    """Parse the arguments and run the generator until SIGTERM."""
    args = argparse.ArgumentParser(prog="python -m datamesh.demo")
    args.add_argument("--rate", default=DEFAULT_RATE)
    args.add_argument("--schema-every", type=float, default=generator.DEFAULT_SCHEMA_EVERY_S)
    parsed = args.parse_args()
    out = functools.partial(print, flush=True)  # the log is a file: each line as it happens
    generator.run(parse_rate(parsed.rate), parsed.schema_every, out)


if __name__ == "__main__":
    main()
