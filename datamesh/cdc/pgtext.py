"""Parse PostgreSQL's text output (what pgoutput and ``COPY`` send) into Avro-ready numbers.

The connector pins the session settings that shape this text (``DateStyle=ISO``,
``TimeZone=UTC``, ``bytea_output=hex``, ``extra_float_digits=3``; see ``source.SESSION_GUCS``),
so each format below is the only one to expect. Fast paths use the C ``fromisoformat``; the
slow paths handle what Python's ``datetime`` cannot (BC dates, years past 9999, infinities).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_US_PER_DAY = 86_400_000_000
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
# Debezium's convention for PostgreSQL's infinities: the extremes of the carrier type.
_SPECIAL_DATE = {"infinity": INT32_MAX, "-infinity": INT32_MIN}
_SPECIAL_TS = {"infinity": INT64_MAX, "-infinity": INT64_MIN}
_NOT_A_DECIMAL = frozenset({"NaN", "Infinity", "-Infinity"})


def civil_days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (any astronomical year, 0 = 1 BC).

    Howard Hinnant's ``days_from_civil`` (http://howardhinnant.github.io/date_algorithms.html).
    """
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def date_days(raw: bytes) -> int:
    """``date`` text (``2024-01-31``, ``0044-03-15 BC``, ``infinity``) -> days since epoch."""
    text = raw.decode()
    if len(text) == 10:
        return date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL
    special = _SPECIAL_DATE.get(text)
    if special is not None:
        return special
    return _slow_days(text)


def _slow_days(text: str) -> int:
    bc = text.endswith(" BC")
    year, month, day = (int(p) for p in text.removesuffix(" BC").rsplit("-", 2))
    return civil_days(1 - year if bc else year, month, day)


def clock_micros(text: str) -> int:
    """``HH:MM:SS[.ffffff]`` -> microseconds since midnight (``24:00:00`` is allowed)."""
    hms, _, frac = text.partition(".")
    hours, minutes, seconds = hms.split(":")
    micros = int((frac + "000000")[:6]) if frac else 0
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000 + micros


def time_micros(raw: bytes) -> int:
    """``time`` text -> microseconds since midnight."""
    return clock_micros(raw.decode())


def timestamp_micros(raw: bytes) -> int:
    """``timestamp``/``timestamptz`` text -> microseconds since the Unix epoch (UTC)."""
    text = raw.decode()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _slow_timestamp(text)
    if parsed.tzinfo is None:
        return (parsed - _EPOCH_NAIVE) // _ONE_US
    return (parsed - _EPOCH_UTC) // _ONE_US


def _slow_timestamp(text: str) -> int:
    special = _SPECIAL_TS.get(text)
    if special is not None:
        return special
    bc = text.endswith(" BC")
    day_part, _, clock = text.removesuffix(" BC").partition(" ")
    offset_s = 0
    cut = max(clock.rfind("+"), clock.rfind("-"))
    if cut > 0:
        sign = -1 if clock[cut] == "-" else 1
        parts = [int(p) for p in clock[cut + 1 :].split(":")] + [0, 0]
        offset_s = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])
        clock = clock[:cut]
    days = _slow_days(day_part + (" BC" if bc else ""))
    return days * _US_PER_DAY + clock_micros(clock) - offset_s * 1_000_000


def unscaled_decimal(raw: bytes, scale: int) -> int | None:
    """``numeric`` text -> the unscaled integer at ``scale`` (>= 0); None for NaN/infinities.

    ``numeric(p,s)`` output has exactly ``s`` fraction digits, so padding is all this needs;
    raises ``ValueError`` rather than round if a value ever carries more.
    """
    if scale and len(raw) > scale and raw[-scale - 1] == 46:  # "." then exactly `scale` digits
        return int(raw.replace(b".", b""))
    text = raw.decode()
    if text in _NOT_A_DECIMAL:
        return None
    whole, _, frac = text.partition(".")
    if len(frac) > scale and frac[scale:].strip("0"):
        raise ValueError(f"{text} has more than {scale} fraction digits")
    return int(whole + (frac + "0" * scale)[:scale])


def bytea_bytes(raw: bytes) -> bytes:
    """``bytea`` hex output (``\\x0a0b``) -> the bytes."""
    return bytes.fromhex(raw[2:].decode())


def array_items(raw: bytes) -> list[bytes | None]:
    """A one-dimensional array literal (``{1,NULL,"a b"}``) -> its items' text (None = NULL).

    Raises ``ValueError`` for multidimensional arrays: their depth is not in the column type.
    """
    text = raw.decode()
    if text.startswith("["):  # explicit bounds, e.g. [0:2]={1,2,3}
        text = text[text.index("=") + 1 :]
    body = text[1:-1]
    if "{" in body:
        raise ValueError("multidimensional arrays are not supported")
    if not body:
        return []
    if '"' not in body:
        return [None if item == "NULL" else item.encode() for item in body.split(",")]
    return _quoted_items(body)


def _quoted_items(body: str) -> list[bytes | None]:
    items: list[bytes | None] = []
    current: list[str] = []
    quoted = was_quoted = False
    chars = iter(body)
    for ch in chars:
        if ch == "\\" and quoted:
            current.append(next(chars))
        elif ch == '"':
            quoted = not quoted
            was_quoted = True
        elif ch == "," and not quoted:
            items.append(_item(current, was_quoted))
            current, was_quoted = [], False
        else:
            current.append(ch)
    items.append(_item(current, was_quoted))
    return items


def _item(chars: list[str], was_quoted: bool) -> bytes | None:
    text = "".join(chars)
    return None if text == "NULL" and not was_quoted else text.encode()
