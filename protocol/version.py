"""The protocol's version and its one compatibility rule.

PROTOCOL_VERSION is "MAJOR.MINOR". A client and a server speak to each other when their MAJOR
versions are equal. Within a major version, a minor release only adds:
- methods and notifications (a server lists its own in `initialize`'s `capabilities`);
- optional request fields (a client checks the server's minor version before sending one:
  servers reject unknown request fields);
- fields in results and notifications (clients ignore fields they do not know);
- error codes (clients treat an unknown code like its JSON-RPC range: -32000..-32099 is a
  server error).
Anything else (removing or renaming a field, changing a type, a unit or a code's meaning) is a
new major version.
"""

from __future__ import annotations

import re

from protocol.errors import IncompatibleVersionError

PROTOCOL_VERSION = "1.9"  # 1.1: `spacing` in map.generate and map.continue; 1.2: drawGaps;
# 1.3: `bpm` in map.generate; 1.4: `alternativeBpm` in job.finished's stats; 1.5: `bpmTag` there;
# 1.6: timing.estimate; paths may hold control characters other than NUL (Linux and macOS
# folder names do), in songs.detected and job.finished too; 1.7: `meter` in map.generate;
# 1.8: WRITE_ERROR (-32013), where a full disk or a read-only folder was INTERNAL_ERROR;
# 1.9: `tempoFrom` in job.finished's stats (a given `bpm` was reported only as "estimated")

VERSION_PATTERN = r"^[0-9]{1,4}\.[0-9]{1,4}$"


def parse_version(version: str) -> tuple[int, int]:
    """"1.0" -> (1, 0); ValueError for anything else."""
    if not isinstance(version, str) or not re.fullmatch(VERSION_PATTERN[1:-1], version):
        raise ValueError(f"not a MAJOR.MINOR version: {version!r}")
    major, minor = version.split(".")
    return int(major), int(minor)


def is_compatible(version: str, ours: str = PROTOCOL_VERSION) -> bool:
    """Whether a peer speaking `version` can talk to us: the major versions are equal."""
    try:
        return parse_version(version)[0] == parse_version(ours)[0]
    except ValueError:
        return False


def check_compatible(version: str, ours: str = PROTOCOL_VERSION) -> None:
    """Raise IncompatibleVersionError (code INCOMPATIBLE_VERSION) unless `is_compatible`."""
    if not is_compatible(version, ours):
        raise IncompatibleVersionError(version, ours)
