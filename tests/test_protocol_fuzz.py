"""Malformed protocol input, thousands of times (hypothesis): decode_message gives a typed
message or a ProtocolError with the right code, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocol
from protocol import (
    METHODS,
    NOTIFICATIONS,
    ErrorCode,
    ProtocolError,
    decode_message,
    decode_result,
    encode_message,
)

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "protocol").glob("*.json"))
# What decode_message may raise, whatever it is fed.
DECODE_CODES = {ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST, ErrorCode.METHOD_NOT_FOUND,
                ErrorCode.INVALID_PARAMS, ErrorCode.FRAME_TOO_LARGE}


# Malformed input, thousands of times: a typed message or a ProtocolError, nothing else


def decode_outcome(data: str | bytes):
    try:
        return decode_message(data)
    except ProtocolError as e:
        assert e.code in DECODE_CODES, e
        return e


json_scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)
# Raw fragments that json.dumps cannot produce: NaN, huge exponents, 400-digit integers.
raw_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999",
                               "9" * 400, "-0", "0.0", "1E2", "4.5e+1"])
METHOD_NAMES = list(METHODS) + list(NOTIFICATIONS) + ["", "map", "job.cancel ", "rpc.x"]
GOLDEN_REQUESTS = [json.loads(p.read_text(encoding="utf-8")) for p in GOLDEN
                   if p.name.startswith(("request.", "notification."))]

# Thousands of frames in all; hypothesis's generation, not decoding (~70 µs), is the cost.
FUZZ = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 json_values.map(json.dumps)))
def test_fuzz_arbitrary_frames(data):
    outcome = decode_outcome(data)
    if isinstance(data, bytes):
        assert isinstance(outcome, protocol.ParseError)


@FUZZ
@given(st.sampled_from(METHOD_NAMES), json_values, json_values)
def test_fuzz_envelopes_with_junk(method, request_id, params):
    for message in ({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
                    {"jsonrpc": "2.0", "method": method, "params": params},
                    {"jsonrpc": "2.0", "id": request_id, "result": params},
                    {"jsonrpc": "2.0", "id": request_id, "error": params}):
        outcome = decode_outcome(json.dumps(message))
        if isinstance(outcome, ProtocolError):
            assert outcome.code != ErrorCode.PARSE_ERROR  # it was valid JSON
    for name in METHODS:  # a client typing a junk result
        try:
            decode_result(name, params)
        except ProtocolError as e:
            assert e.code == ErrorCode.INVALID_REQUEST


def mutate(draw, message: dict) -> tuple[dict, set[int]]:
    """A golden request or notification with one thing broken, and the codes it may give."""
    message = json.loads(json.dumps(message))
    params = message.get("params", {})
    where = draw(st.sampled_from(["drop", "replace", "add", "envelope"]))
    if where == "drop" and params:
        del params[draw(st.sampled_from(sorted(params)))]
        return message, {ErrorCode.INVALID_PARAMS, 0}  # 0: an optional field was dropped
    if where == "replace" and params:
        key = draw(st.sampled_from(sorted(params)))
        params[key] = draw(json_values)
        return message, {ErrorCode.INVALID_PARAMS, 0}
    if where == "add":
        params[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in params))] = \
            draw(json_values)
        # requests refuse unknown fields; notifications accept them
        return message, {ErrorCode.INVALID_PARAMS} if "id" in message else {0}
    key = draw(st.sampled_from(["jsonrpc", "id", "extra"] if "id" in message
                               else ["jsonrpc", "extra"]))
    message[key] = draw(json_values)
    return message, {ErrorCode.INVALID_REQUEST, 0}


@settings(FUZZ, max_examples=1200)
@given(st.data())
def test_fuzz_mutated_golden_messages_give_the_right_code(data):
    message, codes = mutate(data.draw, data.draw(st.sampled_from(GOLDEN_REQUESTS)))
    outcome = decode_outcome(json.dumps(message))
    code = outcome.code if isinstance(outcome, ProtocolError) else 0
    assert code in codes, (message, outcome)
    if code == ErrorCode.INVALID_PARAMS:
        assert outcome.message.startswith("params")
        if isinstance(message.get("id"), (int, str)) and not isinstance(message["id"], bool):
            assert outcome.request_id == message["id"]
    if code == 0:  # what decodes, encodes to the same message
        assert decode_message(encode_message(outcome)) == outcome


@FUZZ
@given(st.sampled_from(GOLDEN_REQUESTS), st.sampled_from(["params", "id"]), raw_numbers)
def test_fuzz_raw_numbers(message, where, number):
    message = json.loads(json.dumps(message))
    if where == "params" and message.get("params"):
        message["params"][sorted(message["params"])[0]] = "@NUMBER@"
    elif "id" in message:
        message["id"] = "@NUMBER@"
    text = json.dumps(message).replace('"@NUMBER@"', number)
    decode_outcome(text)


@settings(FUZZ, max_examples=500)
@given(st.sampled_from(GOLDEN_REQUESTS), st.integers(min_value=0, max_value=4000),
       st.text(min_size=1, max_size=3))
def test_fuzz_truncated_and_spliced_frames(message, cut, junk):
    text = json.dumps(message)
    decode_outcome(text[:cut % (len(text) + 1)])
    decode_outcome(text[:cut % (len(text) + 1)] + junk + text[cut % (len(text) + 1):])
