"""``python -m datamesh.cdc``: see :mod:`datamesh.cdc.cli`."""

from __future__ import annotations

import sys

from datamesh.cdc.cli import main

if __name__ == "__main__":
    sys.exit(main())
