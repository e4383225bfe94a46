"""Error codes and the exceptions that carry them (DESIGN §9).

After python-lsp-jsonrpc: every error is an exception class that knows its wire code and
serialises itself (`to_json()`), so a handler raises `PathOutsideSongsError(...)` and the one
place that answers requests turns any `ProtocolError` into a JSON-RPC error response.

Codes: JSON-RPC 2.0's own (-32700, -32600..-32603, https://www.jsonrpc.org/specification#error_object)
and the daemon's, in the range the specification reserves for implementations (-32000..-32099),
grouped by tens: -3200x the session, -3201x files, -3202x the work itself, -3203x jobs,
-3204x transport limits. A code, once published, never changes meaning.
"""

from __future__ import annotations

from enum import IntEnum, unique
from typing import Any, ClassVar

# Messages are cut to this many characters on the wire (ErrorObject.message's maxLength).
MAX_ERROR_MESSAGE = 4096


@unique
class ErrorCode(IntEnum):
    # JSON-RPC 2.0
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # the session
    UNAUTHORIZED = -32000
    NOT_INITIALIZED = -32001
    INCOMPATIBLE_VERSION = -32002
    # files
    PATH_OUTSIDE_SONGS = -32010
    FILE_NOT_FOUND = -32011
    FILE_CHANGED = -32012
    WRITE_ERROR = -32013
    # the work
    BEATMAP_PARSE_ERROR = -32020
    AUDIO_ERROR = -32021
    MODEL_ERROR = -32022
    # jobs
    JOB_NOT_FOUND = -32030
    QUEUE_FULL = -32031
    CANCELLED = -32032
    # transport limits
    FRAME_TOO_LARGE = -32040
    RATE_LIMITED = -32041


# The implementation-defined range of JSON-RPC 2.0 ("-32000 to -32099: Server error").
SERVER_ERROR_RANGE = range(-32099, -32000 + 1)


class ProtocolError(Exception):
    """Base of every error that travels on the wire: `code`, `message` and optional `data`.

    `request_id` is the id of the request the error answers, where the decoder could read one
    (None for notifications, unparseable frames and bad ids): reply with
    `encode_error(exc.request_id, exc)`.
    """

    code: ClassVar[int] = ErrorCode.INTERNAL_ERROR
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        self.message = message or self.default_message
        self.data = data
        self.request_id: int | str | None = None
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC error object: {"code", "message", "data"?}."""
        error: dict[str, Any] = {"code": int(self.code),
                                 "message": self.message[:MAX_ERROR_MESSAGE]}
        if self.data is not None:
            error["data"] = self.data
        return error

    @staticmethod
    def from_json(error: dict[str, Any]) -> ProtocolError:
        """The exception for a received error object; unknown codes give a plain ProtocolError."""
        code, message, data = error["code"], error["message"], error.get("data")
        cls = ERROR_CLASSES.get(code)
        if cls is None:
            exc = ProtocolError(message, data)
            exc.code = code  # an instance attribute: a code this version does not know
            return exc
        exc = cls.__new__(cls)
        ProtocolError.__init__(exc, message, data)
        return exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={int(self.code)}, message={self.message!r})"


# JSON-RPC 2.0's own


class ParseError(ProtocolError):
    """The frame is not JSON (or is a binary frame)."""

    code = ErrorCode.PARSE_ERROR
    default_message = "parse error"


class InvalidRequestError(ProtocolError):
    """The JSON is not a valid JSON-RPC 2.0 envelope (batches included: kiai rejects them)."""

    code = ErrorCode.INVALID_REQUEST
    default_message = "invalid request"


class MethodNotFoundError(ProtocolError):
    code = ErrorCode.METHOD_NOT_FOUND
    default_message = "method not found"

    def __init__(self, method: str, message: str | None = None) -> None:
        super().__init__(message or f"unknown method {method[:64]!r}", {"method": method[:64]})


class InvalidParamsError(ProtocolError):
    """The params do not fit the method's schema; `data.field` is the path (`params.fromMs`)."""

    code = ErrorCode.INVALID_PARAMS
    default_message = "invalid params"

    def __init__(self, message: str | None = None, field: str | None = None) -> None:
        super().__init__(message, None if field is None else {"field": field})


class InternalError(ProtocolError):
    code = ErrorCode.INTERNAL_ERROR
    default_message = "internal error"


# the session


class UnauthorizedError(ProtocolError):
    """No token, or a wrong one (header `Authorization: Bearer` or `initialize.token`)."""

    code = ErrorCode.UNAUTHORIZED
    default_message = "unauthorized: missing or wrong token"


class NotInitializedError(ProtocolError):
    """A request other than `initialize` before a successful `initialize`."""

    code = ErrorCode.NOT_INITIALIZED
    default_message = "send initialize first"


class IncompatibleVersionError(ProtocolError):
    """The client's protocol major version is not the server's (see protocol.version)."""

    code = ErrorCode.INCOMPATIBLE_VERSION
    default_message = "incompatible protocol version"

    def __init__(self, client_version: str, server_version: str) -> None:
        super().__init__(
            f"protocol {client_version!r} is not compatible with the server's {server_version!r}"
            " (the major versions must match)",
            {"clientVersion": client_version, "serverVersion": server_version},
        )


# files


class PathOutsideSongsError(ProtocolError):
    """A path resolves (symlinks included) outside the Songs folder."""

    code = ErrorCode.PATH_OUTSIDE_SONGS
    default_message = "path outside the Songs folder"

    def __init__(self, path: str) -> None:
        super().__init__(f"{path!r} is outside the Songs folder", {"path": path})


class MissingFileError(ProtocolError):
    """FILE_NOT_FOUND (named so as not to shadow the builtin FileNotFoundError)."""

    code = ErrorCode.FILE_NOT_FOUND
    default_message = "file not found"

    def __init__(self, path: str, why: str = "does not exist") -> None:
        super().__init__(f"{path!r} {why}", {"path": path})


class FileChangedError(ProtocolError):
    """The beatmap's MD5 is not the `expectedMd5` of the request: it changed since."""

    code = ErrorCode.FILE_CHANGED
    default_message = "file changed since the request"

    def __init__(self, path: str, expected_md5: str, actual_md5: str) -> None:
        super().__init__(
            f"{path!r} changed: MD5 {actual_md5}, expected {expected_md5}",
            {"path": path, "expectedMd5": expected_md5, "actualMd5": actual_md5},
        )


class WriteError(ProtocolError):
    """The new map could not be written into its song folder (a full disk, a read-only file
    system, no permission); nothing partial is left and no file of the user's changed."""

    code = ErrorCode.WRITE_ERROR
    default_message = "cannot write the map"

    def __init__(self, folder: str, why: str) -> None:
        super().__init__(f"cannot write in {folder!r}: {why}", {"path": folder})


# the work


class BeatmapParseError(ProtocolError):
    """The beatmap cannot be read; `data` carries the file (relative to Songs) and the line."""

    code = ErrorCode.BEATMAP_PARSE_ERROR
    default_message = "beatmap parse error"

    def __init__(self, message: str, file: str, line: int | None = None) -> None:
        super().__init__(message, {"file": file, "line": line})


class AudioError(ProtocolError):
    code = ErrorCode.AUDIO_ERROR
    default_message = "audio error"


class ModelError(ProtocolError):
    code = ErrorCode.MODEL_ERROR
    default_message = "model error"


# jobs


class JobNotFoundError(ProtocolError):
    code = ErrorCode.JOB_NOT_FOUND
    default_message = "job not found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}", {"jobId": job_id})


class QueueFullError(ProtocolError):
    code = ErrorCode.QUEUE_FULL
    default_message = "queue full"

    def __init__(self, capacity: int, queue: str = "job queue", unit: str = "jobs") -> None:
        super().__init__(f"the {queue} is full ({capacity} {unit})", {"capacity": capacity})


class JobCancelledError(ProtocolError):
    """CANCELLED: the job was cancelled (named so as not to shadow asyncio.CancelledError)."""

    code = ErrorCode.CANCELLED
    default_message = "cancelled"


# transport limits


class FrameTooLargeError(ProtocolError):
    code = ErrorCode.FRAME_TOO_LARGE
    default_message = "frame too large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the {limit}-byte limit",
                         {"limit": limit})


class RateLimitedError(ProtocolError):
    code = ErrorCode.RATE_LIMITED
    default_message = "rate limited"

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many requests; retry in {retry_after_s:g} s",
                         {"retryAfterS": retry_after_s})


# Every code has exactly one class (checked by the tests).
ERROR_CLASSES: dict[int, type[ProtocolError]] = {
    cls.code: cls for cls in (
        ParseError, InvalidRequestError, MethodNotFoundError, InvalidParamsError, InternalError,
        UnauthorizedError, NotInitializedError, IncompatibleVersionError,
        PathOutsideSongsError, MissingFileError, FileChangedError, WriteError,
        BeatmapParseError, AudioError, ModelError,
        JobNotFoundError, QueueFullError, JobCancelledError,
        FrameTooLargeError, RateLimitedError,
    )
}
