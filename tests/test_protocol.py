"""The protocol package: golden messages both ways, the schema, error codes, encoding, versions
and layering (the validator's messages for malformed input: test_protocol_decoding.py and
test_protocol_fuzz.py)."""

from __future__ import annotations

import ast
import json
import math
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

import protocol
from protocol import (
    ERROR_CLASSES,
    METHODS,
    NOTIFICATIONS,
    PROTOCOL_VERSION,
    BeatmapParseError,
    ErrorCode,
    ErrorObject,
    ErrorResponse,
    FileChangedError,
    FrameTooLargeError,
    IncompatibleVersionError,
    InitializeParams,
    InitializeResult,
    JobAccepted,
    JobFailed,
    JobListParams,
    JobProgress,
    MapContinueParams,
    Notification,
    ProtocolError,
    Request,
    Response,
    ValidationError,
    all_capabilities,
    bearer_header,
    check_compatible,
    config_dir_for,
    decode_message,
    decode_result,
    encode_error,
    encode_message,
    encode_notification,
    encode_request,
    encode_response,
    is_compatible,
    parse_bearer,
)
from protocol.errors import SERVER_ERROR_RANGE
from protocol.schema import SCHEMA_PATH, render, schema
from protocol.validator import validate
from protocol.wire import camel, to_wire

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "protocol"
GOLDEN = sorted(FIXTURES.glob("*.json"))
MAP = "Song/Artist - Song (me) [Hard].osu"


def kind_and_name(path: Path) -> tuple[str, str]:
    """request.map.continue.json -> ("request", "map.continue")."""
    kind, _, name = path.stem.partition(".")
    return kind, name


# Golden examples, both ways


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_message_decodes_to_its_type_and_encodes_back(path):
    text = path.read_text(encoding="utf-8")
    expected = json.loads(text)
    kind, name = kind_and_name(path)
    message = decode_message(text)
    if kind == "request":
        assert isinstance(message, Request)
        assert message.method == name and type(message.params) is METHODS[name].params
        again = encode_message(message)
    elif kind == "response":
        assert isinstance(message, Response)
        result = decode_result(name, message.result)
        assert type(result) is METHODS[name].result
        again = encode_response(message.id, result, method=name)
    elif kind == "notification":
        assert isinstance(message, Notification)
        assert message.method == name and type(message.params) is NOTIFICATIONS[name]
        again = encode_message(message)
    else:
        assert kind == "error" and isinstance(message, ErrorResponse)
        exc = message.exception()
        assert type(exc) is ERROR_CLASSES[message.error.code]
        assert ErrorCode(exc.code).name == name.upper().replace("-", "_")
        assert exc.to_json() == expected["error"]
        again = encode_message(message)
    assert json.loads(again) == expected  # key order aside
    assert decode_message(again, max_bytes=None) == message


def test_every_message_type_and_error_code_has_a_golden_example():
    names = {kind_and_name(p) for p in GOLDEN}
    assert {("request", m) for m in METHODS} <= names
    assert {("response", m) for m in METHODS} <= names
    assert {("notification", m) for m in NOTIFICATIONS} <= names
    assert {("error", c.name.lower().replace("_", "-")) for c in ErrorCode} <= names


def golden_error(name: str) -> dict:
    return json.loads((FIXTURES / f"error.{name}.json").read_text(encoding="utf-8"))["error"]


@pytest.mark.parametrize("name,exc", [
    ("invalid-params", protocol.InvalidParamsError("params.fromMs: expected number, got string",
                                                   "params.fromMs")),
    ("method-not-found", protocol.MethodNotFoundError("map.remix")),
    ("incompatible-version", IncompatibleVersionError("2.0", "1.0")),
    ("path-outside-songs", protocol.PathOutsideSongsError("../../.ssh/id_rsa")),
    ("file-not-found", protocol.MissingFileError("Missing/map.osu")),
    ("job-not-found", protocol.JobNotFoundError("j-9999")),
    ("queue-full", protocol.QueueFullError(8)),
    ("frame-too-large", FrameTooLargeError(70000, 65536)),
    ("rate-limited", protocol.RateLimitedError(0.5)),
    ("unauthorized", protocol.UnauthorizedError()),
    ("not-initialized", protocol.NotInitializedError()),
    ("cancelled", protocol.JobCancelledError()),
    ("internal-error", protocol.InternalError()),
])
def test_exceptions_serialise_to_the_golden_error_objects(name, exc):
    assert exc.to_json() == golden_error(name)


def test_file_errors_carry_their_data():
    path = golden_error("file-changed")["data"]["path"]
    changed = FileChangedError(path, "9e107d9d372bb6826bd81d3542a419d6",
                               "e4d909c290d0fb1ca068ffaddf22cbd0")
    assert changed.to_json() == golden_error("file-changed")
    parse = BeatmapParseError("[HitObjects] line 212: expected x,y,time,type", path, 212)
    assert parse.to_json() == golden_error("beatmap-parse-error")


# The schema


def test_committed_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), \
        "protocol/schema.json is stale: run python -m protocol.schema"


def test_schema_is_draft_2020_12_and_lists_everything():
    doc = schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["x-protocolVersion"] == PROTOCOL_VERSION
    assert list(doc["x-methods"]) == list(METHODS)
    assert list(doc["x-notifications"]) == list(NOTIFICATIONS)
    assert [e["code"] for e in doc["x-errors"]] == [int(c) for c in ErrorCode]
    params = doc["$defs"]["MapContinueParams"]
    assert params["additionalProperties"] is False  # requests reject unknown fields
    assert "additionalProperties" not in doc["$defs"]["JobProgress"]  # replies may grow
    assert params["properties"]["fromMs"] == {
        "type": "number", "description": "objects from here on are generated",
        "minimum": 0, "maximum": 86_400_000}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_messages_fit_the_top_level_schema(path):
    doc = schema()
    validate(json.loads(path.read_text(encoding="utf-8")), doc, doc)


def test_schema_module_check_mode(tmp_path):
    from protocol.schema import main
    assert main(["--check"]) == 0
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert main(["--check", "--out", str(stale)]) == 1
    assert main(["--out", str(stale)]) == 0 and stale.read_text(encoding="utf-8") == render()


# Error codes


def test_error_codes_are_distinct_and_in_their_ranges():
    codes = [int(c) for c in ErrorCode]
    assert len(codes) == len(set(codes))
    jsonrpc = {-32700, -32600, -32601, -32602, -32603}
    for code in ErrorCode:
        assert code in jsonrpc or code in SERVER_ERROR_RANGE, code
    assert set(ERROR_CLASSES) == set(ErrorCode)
    for code, cls in ERROR_CLASSES.items():
        assert cls.code == code and issubclass(cls, ProtocolError)


def test_unknown_error_codes_survive_a_round_trip():
    exc = ProtocolError.from_json({"code": -32099, "message": "from the future", "data": [1]})
    assert type(exc) is ProtocolError and exc.code == -32099
    assert exc.to_json() == {"code": -32099, "message": "from the future", "data": [1]}


# Encoding


def test_zero_percent_is_sent():
    assert json.loads(encode_notification(JobProgress("j-1", "queued", 0)))["params"] == {
        "jobId": "j-1", "stage": "queued", "percent": 0}


def test_wire_names_are_camel_case():
    assert [camel(n) for n in ("from_ms", "uptime_s", "top_k", "expected_md5", "job_id")] == [
        "fromMs", "uptimeS", "topK", "expectedMd5", "jobId"]
    params = to_wire(MapContinueParams(MAP, 1.5, until_ms=3, expected_md5="0" * 32))
    assert params == {"beatmap": MAP, "fromMs": 1.5, "untilMs": 3, "expectedMd5": "0" * 32,
                      "write": "newDifficulty"}


def test_encoding_refuses_messages_the_schema_refuses():
    with pytest.raises(ValidationError, match=r"JobProgress.percent: expected a number <= 100"):
        encode_notification(JobProgress("j", "decoding", 100.5))
    with pytest.raises(ValidationError, match="expected a finite number"):
        encode_notification(JobProgress("j", "decoding", math.nan))
    with pytest.raises(ValidationError, match="untilMs: expected a number > fromMs"):
        encode_request(1, MapContinueParams(MAP, 10, until_ms=5))
    with pytest.raises(TypeError):
        encode_notification(MapContinueParams(MAP, 10))  # a request's params
    with pytest.raises(TypeError):
        Request(1, JobListParams()).reply(JobAccepted("j"))  # job.list answers JobListResult
    with pytest.raises(ValueError):
        encode_request(True, JobListParams())


def test_encode_error_never_fails():
    exc = protocol.InternalError("x" * 10_000, data={"not json": object()})
    body = json.loads(encode_error(("not", "an id"), exc))
    assert body["id"] is None and len(body["error"]["message"]) == 4096
    assert "data" not in body["error"]
    assert json.loads(encode_error(3, ErrorObject(-32000, "no")))["error"] == {
        "code": -32000, "message": "no"}


def test_job_failed_from_an_exception():
    failed = JobFailed.from_error("j-1", protocol.AudioError("cannot decode audio.mp3"))
    assert failed == JobFailed("j-1", -32021, "cannot decode audio.mp3")
    assert "data" not in json.loads(encode_notification(failed))["params"]


def test_job_times_are_rfc_3339_utc():
    stamp = protocol.iso_utc(1738324800.25)
    assert stamp == "2025-01-31T12:00:00.250Z"
    info = protocol.JobInfo("j-1", "map.continue", "queued", 0, stamp)
    assert decode_result("job.list", {"jobs": [to_wire(info)]}).jobs == (info,)


def test_token_stays_out_of_repr():
    params = InitializeParams(PROTOCOL_VERSION, protocol.ClientInfo("x", "1"), token="s3cret")
    assert "s3cret" not in repr(params) and "s3cret" not in repr(Request(1, params))


def test_initialize_result_advertises_every_method():
    result = InitializeResult("0.1.0", PROTOCOL_VERSION, all_capabilities(),
                              protocol.ModelInfo("starter", "default"))
    body = json.loads(encode_response(1, result, method="initialize"))["result"]
    assert body["capabilities"]["methods"] == list(METHODS)
    assert body["capabilities"]["notifications"] == list(NOTIFICATIONS)


# Version, connection


def test_compatibility_is_the_major_version():
    assert is_compatible("1.0") and is_compatible("1.8")
    assert not is_compatible("2.0") and not is_compatible("0.9") and not is_compatible("1")
    with pytest.raises(IncompatibleVersionError) as caught:
        check_compatible("2.1")
    assert caught.value.code == ErrorCode.INCOMPATIBLE_VERSION


def test_config_dir_per_platform():
    assert config_dir_for("win32", {"APPDATA": r"C:\Users\me\AppData\Roaming"}, r"C:\Users\me") \
        == PureWindowsPath(r"C:\Users\me\AppData\Roaming\kiai")
    assert config_dir_for("win32", {}, r"C:\Users\me") == \
        PureWindowsPath(r"C:\Users\me\AppData\Roaming\kiai")
    assert config_dir_for("darwin", {}, "/Users/me") == \
        PurePosixPath("/Users/me/Library/Application Support/kiai")
    assert config_dir_for("linux", {"XDG_CONFIG_HOME": "/x/cfg"}, "/home/me") == \
        PurePosixPath("/x/cfg/kiai")
    assert config_dir_for("linux", {"XDG_CONFIG_HOME": "rel"}, "/home/me") == \
        PurePosixPath("/home/me/.config/kiai")
    assert config_dir_for("linux", {}, "/home/me") == PurePosixPath("/home/me/.config/kiai")


def test_bearer_tokens():
    assert bearer_header("abc") == {"Authorization": "Bearer abc"}
    assert parse_bearer("Bearer abc") == "abc" and parse_bearer("bearer  abc ") == "abc"
    for bad in (None, "", "Bearer", "Bearer ", "Basic abc", "abc"):
        assert parse_bearer(bad) is None


# Layers: protocol is stdlib only; examples are protocol + stdlib + websockets


def imports_of(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_protocol_imports_the_standard_library_only():
    for path in (REPO / "protocol").rglob("*.py"):
        outside = imports_of(path) - set(sys.stdlib_module_names) - {"protocol"}
        assert not outside, f"{path.name} imports {outside}"


def test_examples_import_protocol_stdlib_and_websockets_only():
    for path in (REPO / "examples").glob("*.py"):
        outside = imports_of(path) - set(sys.stdlib_module_names) - {
            "protocol", "websockets", "kiai_client"}
        assert not outside, f"{path.name} imports {outside}"
