"""Numbers as osu! reads and writes them.

Parsing follows lazer's `osu.Game/Beatmaps/Formats/Parsing.cs`: invariant culture, values beyond
+-int.MaxValue rejected, NaN rejected unless allowed. A number keeps the type it had in the file so
that writing it back gives the same text (`12` stays `12`, `12.5` stays `12.5`).
"""

from __future__ import annotations

import math
from decimal import Decimal

MAX_PARSE_VALUE = 2_147_483_647  # int.MaxValue, Parsing.MAX_PARSE_VALUE
MAX_COORDINATE_VALUE = 131_072  # Parsing.MAX_COORDINATE_VALUE


def parse_int(text: str, limit: float = MAX_PARSE_VALUE) -> int:
    """An integer as C#'s int.Parse reads it (no decimals, no digit separators)."""
    s = text.strip()
    if "_" in s:
        raise ValueError(f"not an integer: {text!r}")
    try:
        value = int(s)
    except ValueError:
        raise ValueError(f"not an integer: {text!r}") from None
    if not -limit <= value <= limit:
        raise ValueError(f"value out of range: {text!r}")
    return value


def parse_number(text: str, limit: float = MAX_PARSE_VALUE, allow_nan: bool = False) -> float:
    """A decimal number; returns an int when the text is an integer literal."""
    s = text.strip()
    if "_" in s or not s:
        raise ValueError(f"not a number: {text!r}")
    try:
        return parse_int(s, limit)
    except ValueError:
        pass
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if math.isnan(value):
        if not allow_nan:
            raise ValueError(f"not a number: {text!r}")
        return value
    if not -limit <= value <= limit:
        raise ValueError(f"value out of range: {text!r}")
    return value


def format_number(value: float) -> str:
    """The shortest text that parses back to the same value (ints without a decimal point)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)  # numpy scalars too: their repr is `np.float64(...)`
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:  # osu! stable reads plain decimals most reliably
        text = format(Decimal(text), "f")
    return text
