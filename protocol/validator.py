"""A small JSON Schema validator: the subset of draft 2020-12 that protocol.schema generates.

Keywords: $ref (local, "#/$defs/Name"), allOf, anyOf, oneOf, type, const, enum, properties,
required, additionalProperties (false or a schema), items, minItems, maxItems, minLength,
maxLength, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum. Annotations
(description, format, title, x-*) are ignored, except that `format` names what a failed
pattern meant in the message. The first problem found is raised as a ValidationError naming
its path (`params.sampling.topK`); the codec turns it into the right protocol error.

Beyond the keywords, stricter than plain JSON Schema where Python's json module is lax:
bool is never a number or an integer, numbers must be finite, strings must be valid Unicode
(no lone surrogates, which cannot be written as UTF-8 or used as file names).
All patterns are anchored (^...$) and matched against the whole string.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

# What a pattern means, for messages: "params.beatmap: expected a path relative to ...".
FORMAT_TEXT = {
    "relative-path": "a path relative to the Songs folder (no leading / or \\, no drive letter,"
                     " no NUL)",
    "md5": "32 hexadecimal digits (an MD5)",
    "job-id": "a job id (letters, digits, '_', '.', '-')",
    "date-time": "an RFC 3339 date-time (2025-01-31T12:00:00Z)",
    "protocol-version": "a MAJOR.MINOR version (\"1.0\")",
}


class ValidationError(ValueError):
    """A value does not fit its schema: `path` (dotted, camelCase) and `reason`."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" if path else reason)

    def under(self, prefix: str) -> ValidationError:
        """The same error with its path prefixed ("params" + "fromMs")."""
        return ValidationError(_join(prefix, self.path) if self.path else prefix, self.reason)


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "") -> None:
    """Raise ValidationError unless `value` fits `schema` ($refs resolved against `root`)."""
    if "$ref" in schema:
        validate(value, _resolve(root, schema["$ref"]), root, path)
    for sub in schema.get("allOf", ()):
        validate(value, sub, root, path)
    if "anyOf" in schema:
        _any_of(value, schema["anyOf"], root, path)
    if "oneOf" in schema:
        _one_of(value, schema["oneOf"], root, path)
    if "type" in schema:
        _check_type(value, schema["type"], path)
    if "const" in schema and not _same(value, schema["const"]):
        raise ValidationError(path, f"expected {_show(schema['const'])}")
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        raise ValidationError(path, "expected one of " + ", ".join(map(_show, schema["enum"])))
    if isinstance(value, dict):
        _check_object(value, schema, root, path)
    elif isinstance(value, list):
        _check_array(value, schema, root, path)
    elif isinstance(value, str):
        _check_string(value, schema, path)
    elif _is_number(value):
        _check_number(value, schema, path)


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check_type(value: Any, expected: str | list[str], path: str) -> None:
    names = [expected] if isinstance(expected, str) else expected
    actual = json_type(value)
    fits = (actual in names
            or (actual == "integer" and "number" in names)
            or (actual == "number" and "integer" in names and value.is_integer()))
    if not fits:
        raise ValidationError(path, f"expected {' or '.join(names)}, got {actual}")
    if actual == "number" and not math.isfinite(value):
        raise ValidationError(path, "expected a finite number")


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any],
                  path: str) -> None:
    properties = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            raise ValidationError(_join(path, key), "required field is missing")
    extra = schema.get("additionalProperties", True)
    if extra is not True:
        for key in value:
            if key not in properties:
                if extra is False:
                    raise ValidationError(_join(path, _clip(key)), "unknown field")
                validate(value[key], extra, root, _join(path, _clip(key)))
    for key, sub in properties.items():
        if key in value:
            validate(value[key], sub, root, _join(path, key))


def _check_array(value: list[Any], schema: dict[str, Any], root: dict[str, Any],
                 path: str) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise ValidationError(path, f"expected at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise ValidationError(path, f"expected at most {schema['maxItems']} items")
    if "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], root, f"{path}[{i}]")


def _check_string(value: str, schema: dict[str, Any], path: str) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ValidationError(path, f"expected at most {schema['maxLength']} characters")
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise ValidationError(path, f"expected at least {schema['minLength']} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(path, "expected valid Unicode (a lone surrogate)") from None
    if "pattern" in schema and not _compiled(schema["pattern"]).fullmatch(value):
        meaning = FORMAT_TEXT.get(schema.get("format", ""))
        raise ValidationError(path, f"expected {meaning}" if meaning
                              else f"does not match {schema['pattern']}")


def _check_number(value: float, schema: dict[str, Any], path: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise ValidationError(path, f"expected a number >= {_show(schema['minimum'])}")
    if "maximum" in schema and value > schema["maximum"]:
        raise ValidationError(path, f"expected a number <= {_show(schema['maximum'])}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise ValidationError(path, f"expected a number > {_show(schema['exclusiveMinimum'])}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        raise ValidationError(path, f"expected a number < {_show(schema['exclusiveMaximum'])}")


def _any_of(value: Any, options: list[dict[str, Any]], root: dict[str, Any], path: str) -> None:
    errors = []
    for option in options:
        try:
            validate(value, option, root, path)
            return
        except ValidationError as e:
            errors.append((option, e))
    # The option of the value's own type explains best; else list the types allowed.
    actual = json_type(value)
    for option, error in errors:
        resolved = _resolve(root, option["$ref"]) if "$ref" in option else option
        if resolved.get("type") == actual or (actual == "integer"
                                              and resolved.get("type") == "number"):
            raise error
    types_ = [(_resolve(root, o["$ref"]) if "$ref" in o else o).get("type") for o in options]
    if all(isinstance(t, str) for t in types_):
        raise ValidationError(path, f"expected {' or '.join(types_)}, got {actual}")
    raise errors[0][1]


def _one_of(value: Any, options: list[dict[str, Any]], root: dict[str, Any], path: str) -> None:
    matched = 0
    for option in options:
        try:
            validate(value, option, root, path)
            matched += 1
        except ValidationError:
            pass
    if matched != 1:
        names = [k for o in options for k in o.get("required", ())]
        if len(names) == len(options) and all(set(o) == {"required"} for o in options):
            raise ValidationError(path, f"expected exactly one of {', '.join(names)}")
        raise ValidationError(path, "expected exactly one of the allowed forms")


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported: {ref}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1 and "1" != 1."""
    numeric = ("integer", "number")
    if json_type(a) in numeric and json_type(b) in numeric:
        return a == b
    return json_type(a) == json_type(b) and a == b


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _clip(key: str) -> str:
    """A key from the peer, safe to echo in a message: at most 64 characters, and lone
    surrogates escaped (echoed raw, they would make the error itself invalid Unicode)."""
    key = key if len(key) <= 64 else key[:61] + "..."
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _show(value: Any) -> str:
    return json.dumps(value)
