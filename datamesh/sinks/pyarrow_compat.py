"""Let pyiceberg 0.12 write Parquet with the pyarrow this venv can have.

pyiceberg 0.12 opens ``pyarrow.parquet.ParquetWriter(..., store_decimal_as_integer=True)``, an
option pyarrow added in 19.0; PyFlink 2.2 (the source of the embedded Flink distribution) brings
apache-beam 2.61, which pins ``pyarrow < 17``. Below 19 the option is dropped, for pyiceberg's
writer only (a proxy of ``pyarrow.parquet`` in pyiceberg's module, nothing global): decimals are
then stored as fixed-length byte arrays, which the Iceberg spec allows and every reader reads.
The lasting fix is to move PyFlink into its own environment (it is only used for its ``bin/``
and jars) and let this venv take pyarrow >= 19.
"""

from __future__ import annotations

import types
from typing import Any

import pyarrow
import pyarrow.parquet as pq
import pyiceberg.io.pyarrow as pyiceberg_arrow

NEEDS_SHIM = int(pyarrow.__version__.split(".")[0]) < 19


class _ParquetWriter(pq.ParquetWriter):  # type: ignore[misc]
    def __init__(self, *args: Any, store_decimal_as_integer: bool | None = None, **kw: Any):
        super().__init__(*args, **kw)


def install() -> None:
    """Give pyiceberg's Arrow writer a ``ParquetWriter`` without the option (pyarrow < 19)."""
    if not NEEDS_SHIM or isinstance(pyiceberg_arrow.pq, types.SimpleNamespace):  # type: ignore[attr-defined]
        return
    proxy = types.SimpleNamespace(**{n: getattr(pq, n) for n in dir(pq) if not n.startswith("__")})
    proxy.ParquetWriter = _ParquetWriter
    pyiceberg_arrow.pq = proxy  # type: ignore[attr-defined]


install()
