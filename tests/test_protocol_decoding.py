"""The protocol's decoding of what a client sends: every malformed frame, request and reply
raises the error (code, message, request id) a server answers with. Random input:
test_protocol_fuzz.py; golden messages, schema and encoding: test_protocol.py."""

from __future__ import annotations

import json

import pytest

import protocol
from protocol import (
    MAX_REQUEST_BYTES,
    ErrorCode,
    FrameTooLargeError,
    JobAccepted,
    JobFinished,
    JobListParams,
    JobProgress,
    JobStats,
    ProtocolError,
    Request,
    decode_message,
    decode_result,
    encode_error,
    encode_notification,
)


def frame(method: str, params: object = None, request_id: object = 1, **extra) -> str:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


MAP = "Song/Artist - Song (me) [Hard].osu"


@pytest.mark.parametrize("text,code,message", [
    ("{", ErrorCode.PARSE_ERROR, "invalid JSON: Expecting property name"),
    ('{"a": NaN}', ErrorCode.PARSE_ERROR, "invalid JSON: NaN is not JSON"),
    ('{"a": 1, "a": 2}', ErrorCode.PARSE_ERROR, "invalid JSON: duplicate key 'a'"),
    ("[" * 50_000 + "]" * 50_000, ErrorCode.FRAME_TOO_LARGE, "message of 100000 bytes"),
    ("[" * 20_000 + "]" * 20_000, ErrorCode.PARSE_ERROR, "invalid JSON: nested too deeply"),
    ("[]", ErrorCode.INVALID_REQUEST, "batches are not supported"),
    ("[" + frame("job.list") + "]", ErrorCode.INVALID_REQUEST, "batches are not supported"),
    ('"hello"', ErrorCode.INVALID_REQUEST, "expected a JSON object"),
    ("{}", ErrorCode.INVALID_REQUEST, "expected a request (method, id)"),
    (frame("job.list", jsonrpc="1.0"), ErrorCode.INVALID_REQUEST, 'jsonrpc: expected "2.0"'),
    (frame("job.list", request_id=True), ErrorCode.INVALID_REQUEST,
     "id: expected integer or string, got boolean"),
    (frame("job.list", request_id=None), ErrorCode.INVALID_REQUEST,
     "id: expected integer or string, got null"),
    (frame("job.list", request_id=2**53), ErrorCode.INVALID_REQUEST, "id: expected a number <="),
    (frame("job.list", extra=1), ErrorCode.INVALID_REQUEST, "extra: unknown field"),
    ('{"jsonrpc": "2.0", "method": "job.list"}', ErrorCode.INVALID_REQUEST,
     "job.list is a request: it needs an id"),
    ('{"jsonrpc": "2.0", "id": 1, "result": 1, "error": {}}', ErrorCode.INVALID_REQUEST,
     "a response has a result or an error, not both"),
    (frame("map.remix"), ErrorCode.METHOD_NOT_FOUND, "unknown method 'map.remix'"),
    (frame("job.progress", {}), ErrorCode.METHOD_NOT_FOUND, "job.progress is a notification"),
    (frame("job.list", []), ErrorCode.INVALID_PARAMS, "params: expected object, got array"),
    (frame("job.list", {"x": 1}), ErrorCode.INVALID_PARAMS, "params.x: unknown field"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": "62500"}), ErrorCode.INVALID_PARAMS,
     "params.fromMs: expected number, got string"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": True}), ErrorCode.INVALID_PARAMS,
     "params.fromMs: expected number, got boolean"),
    (frame("map.continue", {"beatmap": MAP}), ErrorCode.INVALID_PARAMS,
     "params.fromMs: required field is missing"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": -1}), ErrorCode.INVALID_PARAMS,
     "params.fromMs: expected a number >= 0"),
    ('{"jsonrpc":"2.0","id":1,"method":"map.continue","params":{"beatmap":"a.osu",'
     '"fromMs":1e999}}', ErrorCode.INVALID_PARAMS, "params.fromMs: expected a finite number"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 10**400}), ErrorCode.INVALID_PARAMS,
     "params.fromMs: expected a number <= 86400000"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 5000, "untilMs": 5000}),
     ErrorCode.INVALID_PARAMS, "params.untilMs: expected a number > fromMs"),
    (frame("map.continue", {"beatmap": "/etc/passwd", "fromMs": 0}), ErrorCode.INVALID_PARAMS,
     "params.beatmap: expected a path relative to the Songs folder"),
    (frame("map.continue", {"beatmap": "C:\\osu\\Songs\\a.osu", "fromMs": 0}),
     ErrorCode.INVALID_PARAMS, "params.beatmap: expected a path relative"),
    (frame("map.continue", {"beatmap": "a\x00.osu", "fromMs": 0}), ErrorCode.INVALID_PARAMS,
     "params.beatmap: expected a path relative"),
    (frame("map.continue", {"beatmap": "a" * 1025, "fromMs": 0}), ErrorCode.INVALID_PARAMS,
     "params.beatmap: expected at most 1024 characters"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 0, "write": "overwrite"}),
     ErrorCode.INVALID_PARAMS, 'params.write: expected one of "newDifficulty", "inPlace"'),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 0, "expectedMd5": "abc"}),
     ErrorCode.INVALID_PARAMS, "params.expectedMd5: expected at least 32 characters"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 0, "sampling": {"topP": 0}}),
     ErrorCode.INVALID_PARAMS, "params.sampling.topP: expected a number > 0"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 0, "sampling": {"beamSize": 2.5}}),
     ErrorCode.INVALID_PARAMS, "params.sampling.beamSize: expected integer, got number"),
    (frame("map.continue", {"beatmap": MAP, "fromMs": 0, "sampling": {"drawGaps": 1}}),
     ErrorCode.INVALID_PARAMS, "params.sampling.drawGaps: expected boolean, got integer"),
    (frame("map.generate", {}), ErrorCode.INVALID_PARAMS,
     "params: expected exactly one of songFolder, audio"),
    (frame("map.generate", {"songFolder": "a", "audio": "a/b.mp3"}), ErrorCode.INVALID_PARAMS,
     "params: expected exactly one of songFolder, audio"),
    (frame("initialize", {"protocolVersion": "one", "client": {"name": "x", "version": ""}}),
     ErrorCode.INVALID_PARAMS, "params.protocolVersion: expected a MAJOR.MINOR version"),
    ('{"jsonrpc":"2.0","id":1,"method":"map.continue","params":{"beatmap":"\\ud800",'
     '"fromMs":0}}', ErrorCode.INVALID_PARAMS, "params.beatmap: expected valid Unicode"),
])
def test_malformed_messages_raise_the_right_error(text, code, message):
    with pytest.raises(ProtocolError) as caught:
        decode_message(text)
    assert caught.value.code == code
    assert caught.value.message.startswith(message), caught.value.message


def test_an_unknown_key_that_is_not_unicode_is_escaped_in_the_error():
    """Echoed raw, a lone surrogate would make the error response itself invalid: a client
    decoding it with this package would refuse it and never see its call answered."""
    with pytest.raises(ProtocolError) as caught:
        decode_message('{"jsonrpc":"2.0","id":1,"method":"job.list","params":{"\\ud800":1}}')
    assert caught.value.message == "params.\\ud800: unknown field"
    error = encode_error(1, caught.value)
    assert decode_message(error).error.message == "params.\\ud800: unknown field"


def test_paths_may_hold_control_characters_but_not_nul():
    """Linux and macOS allow tabs and newlines in folder names: the daemon must be able to
    name such a folder in job.finished, and a client to send it back."""
    tab = "90003 Tab\tIn - Name/map.osu"
    request = decode_message(frame("map.continue", {"beatmap": tab, "fromMs": 0}))
    assert request.params.beatmap == tab
    finished = encode_notification(JobFinished("j-1", tab, JobStats(1, 1.0, 1.0)))
    assert decode_message(finished).params.path == tab


def test_binary_frames_are_parse_errors():
    with pytest.raises(protocol.ParseError, match="binary frames"):
        decode_message(frame("job.list").encode())
    with pytest.raises(FrameTooLargeError):
        decode_message(b"x" * (MAX_REQUEST_BYTES + 1))


def test_errors_name_the_request_id_to_answer():
    with pytest.raises(ProtocolError) as caught:
        decode_message(frame("map.continue", {"beatmap": MAP}, request_id="abc"))
    assert caught.value.request_id == "abc"
    assert json.loads(encode_error(caught.value.request_id, caught.value)) == {
        "jsonrpc": "2.0", "id": "abc", "error": {
            "code": -32602, "message": "params.fromMs: required field is missing",
            "data": {"field": "params.fromMs"}}}
    for unreadable in (frame("map.remix", request_id=True), "{", frame("x", request_id=[1])):
        with pytest.raises(ProtocolError) as caught:
            decode_message(unreadable)
        assert caught.value.request_id is None


def test_params_may_be_absent_for_methods_without_fields():
    assert decode_message('{"jsonrpc":"2.0","id":7,"method":"job.list"}') == \
        Request(7, JobListParams())


def test_integral_numbers_fill_integer_fields():
    message = decode_message(frame("map.continue", {"beatmap": MAP, "fromMs": 0,
                                                    "sampling": {"topK": 40.0}}))
    assert message.params.sampling.top_k == 40 and type(message.params.sampling.top_k) is int


def test_sampling_draw_gaps_is_a_boolean_since_1_2():
    drawn = decode_message(frame("map.generate", {"songFolder": "a", "sampling": {
        "drawGaps": True}}))
    assert drawn.params.sampling.draw_gaps is True
    assert decode_message(frame("map.generate", {"songFolder": "a", "sampling": {}})
                          ).params.sampling.draw_gaps is None  # the server's default


def test_replies_and_notifications_ignore_unknown_fields():
    text = '{"jsonrpc":"2.0","method":"job.progress","params":' \
           '{"jobId":"j","stage":"x","percent":5,"etaS":3}}'
    assert decode_message(text).params == JobProgress("j", "x", 5)
    assert decode_result("map.continue", {"jobId": "j", "queuePosition": 2}) == JobAccepted("j")


def test_bad_results_are_protocol_errors():
    with pytest.raises(protocol.InvalidRequestError, match=r"result\.jobId: required"):
        decode_result("map.continue", {})
