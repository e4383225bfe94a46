"""Constraints on message fields, written as `typing.Annotated` metadata.

    from_ms: Annotated[float, Range(minimum=0), "where the continuation starts, ms"]

A `Range`, `Text` or `Items` becomes JSON Schema keywords (protocol.schema) and so is enforced by
the validator on every message in and out; a plain string is the field's description. The
reusable field types of the protocol (paths, ids, times) are defined here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any


@dataclass(frozen=True)
class Range:
    """Bounds of a number (inclusive unless `exclusive_*`)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None

    def schema(self) -> dict[str, Any]:
        keywords = {"minimum": self.minimum, "maximum": self.maximum,
                    "exclusiveMinimum": self.exclusive_minimum,
                    "exclusiveMaximum": self.exclusive_maximum}
        return {k: v for k, v in keywords.items() if v is not None}


@dataclass(frozen=True)
class Text:
    """Length bounds (in code points) and an optional anchored pattern of a string.

    `format` names what the pattern means; the validator's messages use it.
    """

    max_length: int
    min_length: int = 0
    pattern: str | None = None
    format: str | None = None

    def schema(self) -> dict[str, Any]:
        keywords: dict[str, Any] = {"minLength": self.min_length or None,
                                    "maxLength": self.max_length,
                                    "pattern": self.pattern, "format": self.format}
        return {k: v for k, v in keywords.items() if v is not None}


@dataclass(frozen=True)
class Items:
    """Length bounds of an array."""

    max_items: int
    min_items: int = 0

    def schema(self) -> dict[str, Any]:
        keywords = {"minItems": self.min_items or None, "maxItems": self.max_items}
        return {k: v for k, v in keywords.items() if v is not None}


# The largest integer every JSON implementation holds exactly (JavaScript's MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1

# JSON-RPC ids: LSP's `integer | string` (integers within MAX_SAFE_INTEGER, strings this long);
# null only in error responses that answer an unreadable request (JSON-RPC 2.0 §5).
MAX_ID_LENGTH = 128

# A day in ms: longer than any song; a bound that keeps times finite and meaningful.
MAX_MS = 86_400_000

# Patterns are anchored and ECMA-262 compatible (JSON Schema's dialect): [0-9], not \d, which in
# Python also matches non-ASCII digits. A path relative to the Songs folder: not empty, no leading
# slash or backslash, no drive letter, no NUL (no file name holds one). Other control characters
# are legal in Linux and macOS names, and the daemon names such folders in songs.detected and
# job.finished. `..` is left to the server, which resolves every path (symlinks included) and
# refuses what lands outside Songs.
RELATIVE_PATH_PATTERN = r"^(?![/\\])(?![A-Za-z]:)[^\x00]+$"
MD5_PATTERN = r"^[0-9a-fA-F]{32}$"
JOB_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
# RFC 3339 date-time, e.g. 2025-01-31T12:00:00.000Z
DATE_TIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                     r"(Z|[+-][0-9]{2}:[0-9]{2})$")

RelPath = Annotated[str, Text(max_length=1024, min_length=1, pattern=RELATIVE_PATH_PATTERN,
                              format="relative-path")]
AbsPath = Annotated[str, Text(max_length=4096, min_length=1)]
JobId = Annotated[str, Text(max_length=64, min_length=1, pattern=JOB_ID_PATTERN, format="job-id")]
Md5 = Annotated[str, Text(max_length=32, min_length=32, pattern=MD5_PATTERN, format="md5")]
DateTime = Annotated[str, Text(max_length=40, min_length=20, pattern=DATE_TIME_PATTERN,
                               format="date-time")]
Name = Annotated[str, Text(max_length=128, min_length=1)]
Label = Annotated[str, Text(max_length=64)]
LongText = Annotated[str, Text(max_length=4096)]
Millis = Annotated[float, Range(minimum=0, maximum=MAX_MS)]
Seconds = Annotated[float, Range(minimum=0, maximum=MAX_MS)]
Percent = Annotated[float, Range(minimum=0, maximum=100)]
Count = Annotated[int, Range(minimum=0, maximum=MAX_SAFE_INTEGER)]
Setting = Annotated[float, Range(minimum=0, maximum=10)]  # AR, CS, OD, HP: 0..10 as in the editor


def iso_utc(epoch_s: float) -> str:
    """A DateTime (JobInfo.created_at) from seconds since the epoch: 2025-01-31T12:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch_s, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
