"""Thousands of malformed messages over one real connection: each is answered with a JSON-RPC
error of the right code (and the request's id when it had a readable one), and the daemon keeps
serving on that connection and others."""

from __future__ import annotations

import json
import shutil

import pytest
from daemon_support import (
    NO_PROXY,
    TOKEN,
    DaemonThread,
    config_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from protocol import METHODS, NOTIFICATIONS, ErrorCode, bearer_header

# Valid params per method; the strategies below break them.
VALID = {
    "initialize": {"protocolVersion": "1.0", "client": {"name": "fuzz", "version": "0"}},
    "map.generate": {"songFolder": "a song"},
    "map.continue": {"beatmap": "a song/map.osu", "fromMs": 1000},
    "job.cancel": {"jobId": "j-1"},
    "job.list": {},
    "server.status": {},
    "timing.estimate": {"songFolder": "a song"},
}
assert set(VALID) == set(METHODS)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=8)
ids = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text(
    st.characters(codec="ascii"), min_size=0, max_size=20)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def envelope(request_id, method, params):
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


not_json = st.text(max_size=200).filter(lambda t: not _is_json(t)).map(
    lambda t: (t, ErrorCode.PARSE_ERROR, None))
binary = st.binary(max_size=200).map(lambda b: (b, ErrorCode.PARSE_ERROR, None))
not_an_object = json_values.filter(lambda v: not isinstance(v, dict)).map(
    lambda v: (json.dumps(v), ErrorCode.INVALID_REQUEST, None))
bad_version = st.tuples(ids, st.sampled_from(sorted(METHODS)),
                        st.sampled_from([None, "1.0", 2, "2.0 ", []])).map(
    lambda t: (json.dumps({**envelope(t[0], t[1], {}), "jsonrpc": t[2]}),
               ErrorCode.INVALID_REQUEST, t[0]))
unknown_method = st.tuples(ids, st.text("abcdefghijklmnopqrstuvwxyz._/", min_size=1,
                                        max_size=30)).filter(
    lambda t: t[1] not in METHODS and t[1] not in NOTIFICATIONS).map(
    lambda t: (json.dumps(envelope(t[0], t[1], {})), ErrorCode.METHOD_NOT_FOUND, t[0]))


@st.composite
def bad_params(draw):
    """A method's valid params with one thing wrong: an unknown key, a field of the wrong
    type, a required field missing, or params that are not an object."""
    method = draw(st.sampled_from(sorted(METHODS)))
    params = json.loads(json.dumps(VALID[method]))
    fields = sorted(params)
    how = draw(st.sampled_from(["unknown", "type", "missing", "array"] if fields
                               else ["unknown", "array"]))
    if how == "unknown":
        params["zz" + draw(st.text(max_size=8))] = draw(json_values)
    elif how == "type":
        key = draw(st.sampled_from(fields))
        wrong = (st.integers() | st.booleans() | st.lists(st.integers(), max_size=2)
                 | st.none()) if isinstance(params[key], (str, dict)) else \
            (st.text(max_size=5) | st.booleans() | st.none())
        params[key] = draw(wrong)
    elif how == "missing":
        del params[draw(st.sampled_from(fields))]
    else:
        params = draw(st.lists(json_values, max_size=3))
    request_id = draw(ids)
    return json.dumps(envelope(request_id, method, params)), ErrorCode.INVALID_PARAMS, request_id


cases = st.one_of(not_json, binary, not_an_object, bad_version, unknown_method, bad_params())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, library, model):
    songs = tmp_path_factory.mktemp("fuzz") / "Songs"
    songs.mkdir()
    shutil.copytree(library["short"], songs / library["short"].name)
    config = config_for(songs, model, rate_per_s=1e6, rate_burst=10**6)
    with DaemonThread(config) as running:
        yield running


def test_malformed_messages_are_each_answered_and_the_daemon_stays_up(daemon):
    url = f"ws://127.0.0.1:{daemon.port}/"
    answered = []
    with connect(url, additional_headers=bearer_header(TOKEN), **NO_PROXY) as ws:
        ws.send(json.dumps(envelope(0, "initialize", VALID["initialize"])))
        assert "result" in json.loads(ws.recv(timeout=10))

        @settings(max_examples=3000, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        @given(case=cases)
        def check(case):
            frame, code, request_id = case
            ws.send(frame)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["jsonrpc"] == "2.0" and "result" not in reply
            assert reply["error"]["code"] == code, (frame, reply)
            assert reply["id"] == request_id, (frame, reply)
            answered.append(code)

        check()
        assert len(answered) >= 2000
        assert set(answered) == {ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST,
                                 ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS}
        ws.send(json.dumps(envelope("after", "server.status", {})))
        assert json.loads(ws.recv(timeout=10))["result"]["queue"]["capacity"] == 8
    with connect(url, additional_headers=bearer_header(TOKEN), **NO_PROXY) as other:
        other.send(json.dumps(envelope(1, "initialize", VALID["initialize"])))
        assert "result" in json.loads(other.recv(timeout=10))
