"""JSON Schema (draft 2020-12) generated from the message classes, and `python -m protocol.schema`.

The schema is the protocol for clients in other languages, and the codec validates every message
against the same document (built in memory from the classes, so they cannot disagree). The
committed protocol/schema.json is a copy for publishing; a test fails when it is stale:

    python -m protocol.schema            # rewrite protocol/schema.json
    python -m protocol.schema --check    # exit 1 if it is stale

Layout: `$defs` holds every message class by name, the JSON-RPC envelopes (Request,
Notification, Response, ErrorResponse) and, per method and notification, the envelope with its
params (`MapContinueRequest`, `JobProgressNotification`); the top-level `anyOf` accepts any
message. `x-methods`, `x-notifications` and `x-errors` list the methods with their params and
result, the notifications and the error table (annotations that validators ignore).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any, Literal

from protocol.errors import ERROR_CLASSES, ErrorCode
from protocol.fields import MAX_ID_LENGTH, MAX_SAFE_INTEGER
from protocol.messages import METHODS, NOTIFICATIONS, ErrorObject
from protocol.version import PROTOCOL_VERSION
from protocol.wire import Shape, wire_fields

SCHEMA_PATH = Path(__file__).with_name("schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"



def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


@functools.cache
def schema() -> dict[str, Any]:
    """The protocol's JSON Schema (cached; do not mutate)."""
    defs: dict[str, Any] = {}
    strict = _reachable([spec.params for spec in METHODS.values()])
    lenient = _reachable([spec.result for spec in METHODS.values()]
                         + list(NOTIFICATIONS.values()) + [ErrorObject])
    if strict & lenient:
        raise TypeError(f"classes used in both requests and replies: {strict & lenient}")
    for cls in sorted(strict | lenient, key=lambda c: c.__name__):
        defs[cls.__name__] = _class_schema(cls, reject_unknown=cls in strict)
    defs.update(_envelopes())
    for method, spec in METHODS.items():
        defs[spec.params.__name__.removesuffix("Params") + "Request"] = _typed_envelope(
            "Request", method, spec.params)
    for method, cls in NOTIFICATIONS.items():
        defs[cls.__name__ + "Notification"] = _typed_envelope("Notification", method, cls)
    typed = [name for name in defs if name.endswith(("Request", "Notification"))
             and name not in ("Request", "Notification")]
    return {
        "$schema": DIALECT,
        "$id": f"urn:kiai:protocol:{PROTOCOL_VERSION}",
        "title": f"kiai protocol {PROTOCOL_VERSION}",
        "description": "JSON-RPC 2.0 messages between the kiai daemon and its clients, over a"
                       " websocket on 127.0.0.1. Generated from protocol/messages.py.",
        "x-protocolVersion": PROTOCOL_VERSION,
        "anyOf": [ref(name) for name in typed] + [ref("Response"), ref("ErrorResponse")],
        "x-methods": {method: {"params": ref(spec.params.__name__),
                               "result": ref(spec.result.__name__)}
                      for method, spec in METHODS.items()},
        "x-notifications": {method: {"params": ref(cls.__name__)}
                            for method, cls in NOTIFICATIONS.items()},
        "x-errors": [{"code": int(code), "name": code.name,
                      "exception": ERROR_CLASSES[code].__name__,
                      "message": ERROR_CLASSES[code].default_message}
                     for code in ErrorCode],
        "$defs": defs,
    }


def render() -> str:
    """schema.json's text: the schema, indented, with a final newline."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def _reachable(roots: list[type]) -> set[type]:
    seen: set[type] = set()
    todo = list(roots)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for f in wire_fields(cls):
            shape = f.shape.item if f.shape.kind is tuple else f.shape
            if dataclasses.is_dataclass(shape.kind):
                todo.append(shape.kind)
    return seen


def _class_schema(cls: type, reject_unknown: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object"}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc and not doc.startswith(cls.__name__ + "("):  # not dataclass's generated signature
        out["description"] = " ".join(doc.split())
    fields = wire_fields(cls)
    out["properties"] = {}
    for f in fields:
        prop = _shape_schema(f.shape)
        if f.default is not dataclasses.MISSING and f.default is not None:
            prop["default"] = f.default
        out["properties"][f.key] = prop
    required = [f.key for f in fields if f.required]
    if required:
        out["required"] = required
    one_of = getattr(cls, "ONE_OF", None)
    if one_of:
        keys = {f.name: f.key for f in fields}
        out["oneOf"] = [{"required": [keys[name]]} for name in one_of]
    if reject_unknown:
        out["additionalProperties"] = False
    return out


def _shape_schema(shape: Shape) -> dict[str, Any]:
    kind = shape.kind
    out: dict[str, Any]
    if dataclasses.is_dataclass(kind):
        out = ref(kind.__name__)
    elif kind is Literal:
        out = {"type": "string", "enum": list(shape.values)}
    elif kind is tuple:
        out = {"type": "array", "items": _shape_schema(shape.item)}
    elif kind is Any:
        out = {}
    else:
        out = {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}[kind]}
    if shape.description:
        out["description"] = shape.description
    for constraint in shape.constraints:
        out.update(constraint.schema())
    return out


def _envelopes() -> dict[str, Any]:
    version = {"const": "2.0"}
    method = {"type": "string", "minLength": 1, "maxLength": 64}
    return {
        "RequestId": {"anyOf": [
            {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER},
            {"type": "string", "maxLength": MAX_ID_LENGTH},
        ]},
        "Request": {
            "description": "A call: the server answers with a Response or an ErrorResponse of"
                           " the same id. params are by name (an object); absent means {}.",
            "type": "object",
            "properties": {"jsonrpc": version, "id": ref("RequestId"), "method": method,
                           "params": {"type": ["object", "array"]}},
            "required": ["jsonrpc", "id", "method"],
            "additionalProperties": False,
        },
        "Notification": {
            "description": "A message that is not answered (no id).",
            "type": "object",
            "properties": {"jsonrpc": version, "method": method,
                           "params": {"type": ["object", "array"]}},
            "required": ["jsonrpc", "method"],
            "additionalProperties": False,
        },
        "Response": {
            "type": "object",
            "properties": {"jsonrpc": version, "id": ref("RequestId"), "result": {}},
            "required": ["jsonrpc", "id", "result"],
            "additionalProperties": False,
        },
        "ErrorResponse": {
            "description": "id is null when the request's id could not be read.",
            "type": "object",
            "properties": {"jsonrpc": version,
                           "id": {"anyOf": [ref("RequestId"), {"type": "null"}]},
                           "error": ref("ErrorObject")},
            "required": ["jsonrpc", "id", "error"],
            "additionalProperties": False,
        },
    }


def _typed_envelope(envelope: str, method: str, params: type) -> dict[str, Any]:
    out: dict[str, Any] = {"allOf": [ref(envelope), {
        "properties": {"method": {"const": method}, "params": ref(params.__name__)},
    }]}
    if any(f.required for f in wire_fields(params)) or getattr(params, "ONE_OF", None):
        out["allOf"][1]["required"] = ["params"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.schema", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if schema.json is stale")
    parser.add_argument("--out", type=Path, default=SCHEMA_PATH, help="where to write")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python -m protocol.schema", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
