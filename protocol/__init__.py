"""kiai's wire protocol: JSON-RPC 2.0 over a websocket on 127.0.0.1 (DESIGN §9).

Pure: message types, the codec, the JSON Schema, error codes, the version rule and where the
token lives. No I/O, no torch, nothing from core/ or companion/; clients in any language can use
protocol/schema.json instead.

A server's loop, in outline:

    try:
        message = decode_message(frame)              # raises ProtocolError subclasses
    except ProtocolError as e:
        await ws.send(encode_error(e.request_id, e))  # answer and keep serving
        continue
    match message:
        case Request(params=MapContinueParams() as p):
            await ws.send(message.reply(JobAccepted(job_id)))
        ...

and its notifications: `await ws.send(encode_notification(JobProgress(job_id, "decoding", 0)))`.

Modules: messages (the classes; timing.estimate's in timing_messages), codec (envelopes,
decode/encode), errors (codes, exceptions), schema (JSON Schema; `python -m protocol.schema`),
validator, wire (snake_case <-> camelCase), fields (constraints), version, connection (port,
config dir, token).
"""

from protocol.codec import (
    MAX_REQUEST_BYTES,
    ErrorResponse,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    decode_json,
    decode_message,
    decode_result,
    encode_error,
    encode_message,
    encode_notification,
    encode_request,
    encode_response,
    parse_json,
)
from protocol.connection import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    TOKEN_FILE_NAME,
    bearer_header,
    config_dir_for,
    default_config_dir,
    parse_bearer,
    token_path,
    websocket_url,
)
from protocol.errors import (
    ERROR_CLASSES,
    AudioError,
    BeatmapParseError,
    ErrorCode,
    FileChangedError,
    FrameTooLargeError,
    IncompatibleVersionError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    JobCancelledError,
    JobNotFoundError,
    MethodNotFoundError,
    MissingFileError,
    ModelError,
    NotInitializedError,
    ParseError,
    PathOutsideSongsError,
    ProtocolError,
    QueueFullError,
    RateLimitedError,
    UnauthorizedError,
    WriteError,
)
from protocol.fields import iso_utc
from protocol.messages import (
    METHODS,
    NOTIFICATIONS,
    Capabilities,
    ClientInfo,
    ErrorObject,
    InitializeParams,
    InitializeResult,
    JobAccepted,
    JobCancelParams,
    JobCancelResult,
    JobFailed,
    JobFinished,
    JobInfo,
    JobListParams,
    JobListResult,
    JobProgress,
    JobStats,
    MapContinueParams,
    MapGenerateParams,
    MethodSpec,
    ModelInfo,
    QueueInfo,
    Sampling,
    ServerStatusParams,
    ServerStatusResult,
    SongsDetected,
    all_capabilities,
)
from protocol.timing_messages import RedLine, TimingEstimateParams, TimingEstimateResult
from protocol.validator import ValidationError
from protocol.version import PROTOCOL_VERSION, check_compatible, is_compatible, parse_version

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "ERROR_CLASSES", "MAX_REQUEST_BYTES", "METHODS",
    "NOTIFICATIONS", "PROTOCOL_VERSION", "TOKEN_FILE_NAME",
    "AudioError", "BeatmapParseError", "Capabilities", "ClientInfo", "ErrorCode", "ErrorObject",
    "ErrorResponse", "FileChangedError", "FrameTooLargeError", "IncompatibleVersionError",
    "InitializeParams", "InitializeResult", "InternalError", "InvalidParamsError",
    "InvalidRequestError", "JobAccepted", "JobCancelParams", "JobCancelResult",
    "JobCancelledError", "JobFailed", "JobFinished", "JobInfo", "JobListParams", "JobListResult",
    "JobNotFoundError", "JobProgress", "JobStats", "MapContinueParams", "MapGenerateParams",
    "Message", "MethodNotFoundError", "MethodSpec", "MissingFileError", "ModelError",
    "ModelInfo", "NotInitializedError", "Notification", "ParseError", "PathOutsideSongsError",
    "ProtocolError", "QueueFullError", "QueueInfo", "RateLimitedError", "RedLine", "Request",
    "RequestId", "Response", "Sampling", "ServerStatusParams", "ServerStatusResult",
    "SongsDetected", "TimingEstimateParams", "TimingEstimateResult", "UnauthorizedError",
    "ValidationError", "WriteError",
    "all_capabilities", "bearer_header", "check_compatible", "config_dir_for",
    "decode_json", "decode_message", "decode_result", "default_config_dir", "encode_error",
    "encode_message", "encode_notification", "encode_request", "encode_response",
    "is_compatible", "iso_utc", "parse_bearer", "parse_json", "parse_version", "token_path",
    "websocket_url",
]
