"""JSON-RPC 2.0 envelopes, and the codec: text frames in, typed messages out, and back.

    decode_message(frame) -> Request | Notification | Response | ErrorResponse
    encode_request / encode_notification / encode_response / encode_error / encode_message

Decoding sorts a message by the shape of its envelope, as python-lsp-jsonrpc does (a method and
an id: a request; a method alone: a notification; a result or an error: a response), validates
the envelope and then the params against the method's JSON Schema (protocol.schema), and raises
the ProtocolError a server answers with:

    PARSE_ERROR       not JSON (NaN and Infinity included), duplicate keys, a binary frame
    FRAME_TOO_LARGE   more than `max_bytes` bytes of UTF-8
    INVALID_REQUEST   not an object, a batch (kiai does not support batches), a bad envelope
    METHOD_NOT_FOUND  a method this protocol does not have
    INVALID_PARAMS    params that do not fit, named by path: "params.fromMs: expected number,
                      got string"; data = {"field": "params.fromMs"}

Nothing else escapes decode_message (a hypothesis test feeds it thousands of malformed frames).
The exception's `request_id` is the id to answer with (None when unreadable or a notification).

Encoding validates too: a message the schema refuses raises ValidationError (a ValueError), so a
server bug never reaches the wire. encode_error never raises on its content.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from protocol.errors import (
    MAX_ERROR_MESSAGE,
    FrameTooLargeError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    ParseError,
    ProtocolError,
)
from protocol.fields import MAX_ID_LENGTH, MAX_SAFE_INTEGER
from protocol.messages import METHODS, NOTIFICATIONS, ErrorObject
from protocol.validator import ValidationError, validate
from protocol.wire import from_wire, to_wire

# The largest message a client may send (its UTF-8 bytes). Requests are a few hundred bytes; the
# cap bounds what one frame can cost the server. Clients decoding the server's messages pass
# max_bytes=None (a long job.list is larger).
MAX_REQUEST_BYTES = 64 * 1024

RequestId = int | str


@dataclass(frozen=True)
class Request:
    """A call; `params` is the method's params object (MapContinueParams, ...)."""

    id: RequestId
    params: Any

    @property
    def method(self) -> str:
        return self.params.METHOD

    def reply(self, result: Any) -> str:
        """The response frame to this request (result: the method's result class)."""
        return encode_response(self.id, result, method=self.method)

    def reply_error(self, error: ProtocolError | ErrorObject) -> str:
        return encode_error(self.id, error)


@dataclass(frozen=True)
class Notification:
    """A message without an id (JobProgress, JobFinished, JobFailed, SongsDetected)."""

    params: Any

    @property
    def method(self) -> str:
        return self.params.METHOD


@dataclass(frozen=True)
class Response:
    """A result. Decoded, `result` is raw JSON: the response does not say its method, so the
    caller, who knows which request `id` was, types it with decode_result(method, result)."""

    id: RequestId
    result: Any


@dataclass(frozen=True)
class ErrorResponse:
    id: RequestId | None
    error: ErrorObject

    def exception(self) -> ProtocolError:
        """The error as its exception class (ProtocolError.from_json), to raise."""
        return ProtocolError.from_json(to_wire(self.error))


Message = Request | Notification | Response | ErrorResponse


# Decoding


def decode_message(frame: str | bytes, *, max_bytes: int | None = MAX_REQUEST_BYTES) -> Message:
    """One websocket frame as a typed message, or a ProtocolError (see the module docstring)."""
    return decode_json(parse_json(frame, max_bytes))


def parse_json(frame: str | bytes, max_bytes: int | None = MAX_REQUEST_BYTES) -> Any:
    """The JSON value of a text frame. Stricter than json.loads: no NaN/Infinity, no duplicate
    keys; binary frames are refused (kiai speaks text frames only)."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        if max_bytes is not None and len(frame) > max_bytes:
            raise FrameTooLargeError(len(frame), max_bytes)
        raise ParseError("binary frames are not accepted: send JSON in a text frame")
    if not isinstance(frame, str):
        raise TypeError(f"expected str or bytes, not {type(frame).__name__}")
    if max_bytes is not None and len(frame) > max_bytes // 4:  # 4 bytes per code point at most
        size = len(frame.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise FrameTooLargeError(size, max_bytes)
    try:
        return json.loads(frame, parse_constant=_reject_constant, object_pairs_hook=_object)
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, our rejections, ints over the digit limit
        raise ParseError(f"invalid JSON: {str(e)[:200]}") from None


def decode_json(document: Any) -> Message:
    """A parsed JSON value as a typed message: the one function that sorts envelopes."""
    if isinstance(document, list):
        raise InvalidRequestError("batches are not supported: send one message per frame")
    if not isinstance(document, dict):
        raise InvalidRequestError("expected a JSON object")
    try:
        if "method" in document:
            if "id" in document:
                return _decode_request(document)
            return _decode_notification(document)
        if "result" in document and "error" in document:
            raise InvalidRequestError("a response has a result or an error, not both")
        if "result" in document:
            _check_envelope(document, "Response")
            return Response(_id(document), document["result"])
        if "error" in document:
            _check_envelope(document, "ErrorResponse")
            return ErrorResponse(_id(document), from_wire(ErrorObject, document["error"]))
        raise InvalidRequestError("expected a request (method, id), a notification (method)"
                                  " or a response (result or error)")
    except ProtocolError as e:
        if "method" in document:  # answers go to requests only, never to responses
            e.request_id = _readable_id(document)
        raise


def decode_result(method: str, result: Any) -> Any:
    """A Response's raw result as the typed result of `method` (the request it answers)."""
    spec = METHODS.get(method)
    if spec is None:
        raise MethodNotFoundError(method)
    try:
        return _typed(spec.result, result, "result")
    except ValidationError as e:
        raise InvalidRequestError(str(e)) from None


def _decode_request(document: dict[str, Any]) -> Request:
    _check_envelope(document, "Request")
    method = document["method"]
    spec = METHODS.get(method)
    if spec is None:
        hint = f"{method} is a notification, not a request" if method in NOTIFICATIONS else None
        raise MethodNotFoundError(method, hint)
    return Request(_id(document), _decode_params(spec.params, document))


def _decode_notification(document: dict[str, Any]) -> Notification:
    _check_envelope(document, "Notification")
    method = document["method"]
    cls = NOTIFICATIONS.get(method)
    if cls is None:
        if method in METHODS:
            raise InvalidRequestError(f"{method} is a request: it needs an id")
        raise MethodNotFoundError(method)
    return Notification(_decode_params(cls, document))


def _decode_params(cls: type, document: dict[str, Any]) -> Any:
    try:
        return _typed(cls, document.get("params", {}), "params")
    except ValidationError as e:
        raise InvalidParamsError(str(e), e.path) from None


def _typed(cls: type, value: Any, path: str) -> Any:
    """Validate `value` against cls's schema and build it; ValidationError names the path."""
    root = _schema()
    validate(value, root["$defs"][cls.__name__], root, path)
    obj = from_wire(cls, value)
    _check(obj, path)
    return obj


def _check(obj: Any, path: str) -> None:
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ValidationError as e:
            raise e.under(path) from None


def _check_envelope(document: dict[str, Any], envelope: str) -> None:
    root = _schema()
    try:
        validate(document, root["$defs"][envelope], root)
    except ValidationError as e:
        raise InvalidRequestError(str(e), {"field": e.path}) from None


def _id(document: dict[str, Any]) -> RequestId | None:
    """A validated envelope's id; 7.0 is 7 (JSON Schema's integer admits it)."""
    request_id = document["id"]
    return int(request_id) if isinstance(request_id, float) else request_id


def _readable_id(document: dict[str, Any]) -> RequestId | None:
    """The request's id if it is a valid one, to address the error reply; else None."""
    request_id = document.get("id")
    if isinstance(request_id, float) and request_id.is_integer():
        request_id = int(request_id)
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        return request_id if abs(request_id) <= MAX_SAFE_INTEGER else None
    if isinstance(request_id, str) and len(request_id) <= MAX_ID_LENGTH:
        try:
            request_id.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return request_id
    return None


def _schema() -> dict[str, Any]:
    # Imported on first use, not at import time, so that `python -m protocol.schema` runs that
    # module once (as __main__) rather than twice.
    from protocol.schema import schema

    return schema()


class _Rejected(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _Rejected(f"{name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Rejected(f"duplicate key {key[:64]!r}")
    return out


# Encoding


def encode_request(request_id: RequestId, params: Any) -> str:
    """A request frame; the method is the params class's (MapContinueParams -> map.continue)."""
    _require_id(request_id)
    method = _registered(params, {m: s.params for m, s in METHODS.items()})
    return _dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                   "params": _checked(params)})


def encode_notification(params: Any) -> str:
    """A notification frame (JobProgress, JobFinished, JobFailed, SongsDetected)."""
    method = _registered(params, NOTIFICATIONS)
    return _dumps({"jsonrpc": "2.0", "method": method, "params": _checked(params)})


def encode_response(request_id: RequestId, result: Any, *, method: str | None = None) -> str:
    """A response frame. `result` is a result object (checked against `method`'s result class
    when given), or raw JSON, sent as is."""
    _require_id(request_id)
    if dataclasses.is_dataclass(result):
        if method is not None and not isinstance(result, METHODS[method].result):
            raise TypeError(f"{method} answers {METHODS[method].result.__name__},"
                            f" not {type(result).__name__}")
        result = _checked(result)
    return _dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def encode_error(request_id: RequestId | None, error: ProtocolError | ErrorObject) -> str:
    """An error response frame. Never fails: an id that is not valid becomes null, a message is
    cut to its maximum length, and `data` that is not JSON is left out."""
    if request_id is not None and _readable_id({"id": request_id}) is None:
        request_id = None
    body = error.to_json() if isinstance(error, ProtocolError) else to_wire(error)
    body["message"] = str(body.get("message", ""))[:MAX_ERROR_MESSAGE]
    envelope = {"jsonrpc": "2.0", "id": request_id, "error": body}
    try:
        return _dumps(envelope)
    except (TypeError, ValueError, RecursionError):
        body.pop("data", None)
        return _dumps(envelope)


def encode_message(message: Message) -> str:
    """Any envelope as a frame."""
    if isinstance(message, Request):
        return encode_request(message.id, message.params)
    if isinstance(message, Notification):
        return encode_notification(message.params)
    if isinstance(message, Response):
        return encode_response(message.id, message.result)
    if isinstance(message, ErrorResponse):
        return encode_error(message.id, message.error)
    raise TypeError(f"not a message: {type(message).__name__}")


def _registered(params: Any, registry: dict[str, type]) -> str:
    method = getattr(params, "METHOD", None)
    if registry.get(method) is not type(params):
        raise TypeError(f"{type(params).__name__} is not a message of this kind")
    return method


def _checked(obj: Any) -> Any:
    """obj as JSON, validated against its class's schema (ValidationError if it does not fit)."""
    value = to_wire(obj)
    root = _schema()
    validate(value, root["$defs"][type(obj).__name__], root, type(obj).__name__)
    _check(obj, type(obj).__name__)
    return value


def _require_id(request_id: Any) -> None:
    if _readable_id({"id": request_id}) is None:
        raise ValueError(f"not a valid request id: {request_id!r}")


def _dumps(value: Any) -> str:
    # ASCII-only output: always valid UTF-8, whatever the strings hold.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
