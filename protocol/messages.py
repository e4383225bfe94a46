"""The messages of the kiai protocol: one frozen dataclass per params, result and notification.

Python names are snake_case; protocol.wire maps them to camelCase on the wire. Every path is
relative to the osu! Songs folder (`server.status` gives that folder's absolute path), every
time is in ms from the start of the audio, every duration in seconds.

Requests (client -> server; the params class names its method in METHOD):
    initialize      InitializeParams     -> InitializeResult
    map.generate    MapGenerateParams    -> JobAccepted
    map.continue    MapContinueParams    -> JobAccepted
    job.cancel      JobCancelParams      -> JobCancelResult
    job.list        JobListParams        -> JobListResult
    server.status   ServerStatusParams   -> ServerStatusResult
    timing.estimate TimingEstimateParams -> TimingEstimateResult  (protocol.timing_messages)
Notifications (server -> client, no id): JobProgress, JobFinished, JobFailed, SongsDetected.

Request params reject unknown fields; results and notifications accept them (and drop them), so
that a minor version can add fields (protocol.version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from protocol.fields import (
    MAX_SAFE_INTEGER,
    AbsPath,
    Count,
    DateTime,
    Items,
    JobId,
    Label,
    LongText,
    Md5,
    Millis,
    Name,
    Percent,
    Range,
    RelPath,
    Seconds,
    Setting,
    Text,
)
from protocol.timing_messages import GivenBpm, TimingEstimateParams, TimingEstimateResult
from protocol.validator import ValidationError
from protocol.version import VERSION_PATTERN

ProtocolVersion = Annotated[str, Text(max_length=9, min_length=3, pattern=VERSION_PATTERN,
                                      format="protocol-version")]
MethodName = Annotated[str, Text(max_length=64, min_length=1)]
JobState = Literal["queued", "running", "finished", "failed", "cancelled"]
JobMethod = Literal["map.generate", "map.continue"]


# Shared parts


@dataclass(frozen=True)
class Sampling:
    """How the decoder picks tokens; each field absent means the server's default."""

    method: Annotated[Literal["greedy", "sample", "beam"] | None, "decoding strategy"] = None
    temperature: Annotated[float | None, Range(minimum=0, maximum=10),
                           "sampling temperature; 0 is greedy"] = None
    top_k: Annotated[int | None, Range(minimum=1, maximum=100_000),
                     "sample from the k most likely tokens"] = None
    top_p: Annotated[float | None, Range(exclusive_minimum=0, maximum=1),
                     "sample from the smallest set of tokens with this much probability"] = None
    beam_size: Annotated[int | None, Range(minimum=1, maximum=64),
                         "beam search: hypotheses kept"] = None
    seed: Annotated[int | None, Range(minimum=0, maximum=MAX_SAFE_INTEGER),
                    "the same seed gives the same map"] = None
    draw_gaps: Annotated[bool | None, "since 1.2, method sample: draw when objects come too; "
                         "default false: each gap is the model's likeliest, what comes there "
                         "is drawn"] = None


@dataclass(frozen=True)
class ClientInfo:
    name: Name
    version: Annotated[str, Text(max_length=64)]


@dataclass(frozen=True)
class ModelInfo:
    name: Name
    vocab: Annotated[Name, "token language, e.g. default or seed"]
    preset: Name | None = None


@dataclass(frozen=True)
class Capabilities:
    methods: Annotated[tuple[MethodName, ...], Items(max_items=256)]
    notifications: Annotated[tuple[MethodName, ...], Items(max_items=256)]


# initialize


@dataclass(frozen=True)
class InitializeParams:
    """The first request of a connection; nothing else is answered before it succeeds."""

    METHOD: ClassVar[str] = "initialize"
    protocol_version: Annotated[ProtocolVersion, "the client's PROTOCOL_VERSION"]
    client: ClientInfo
    # repr=False: a token must not end up in logs.
    token: Annotated[str | None, Text(max_length=256, min_length=1),
                     "for clients that cannot send an Authorization: Bearer header"
                     ] = field(default=None, repr=False)


@dataclass(frozen=True)
class InitializeResult:
    server_version: Name
    protocol_version: ProtocolVersion
    capabilities: Capabilities
    model: ModelInfo


# map.generate, map.continue


@dataclass(frozen=True)
class MapGenerateParams:
    """A whole new map for a song: exactly one of song_folder and audio."""

    METHOD: ClassVar[str] = "map.generate"
    ONE_OF: ClassVar[tuple[str, ...]] = ("song_folder", "audio")
    song_folder: Annotated[RelPath | None, "a song folder in Songs"] = None
    audio: Annotated[RelPath | None, "an audio file in Songs"] = None
    stars: Annotated[float | None, Range(minimum=0, maximum=20), "target star rating"] = None
    ar: Annotated[Setting | None, "approach rate"] = None
    cs: Annotated[Setting | None, "circle size"] = None
    od: Annotated[Setting | None, "overall difficulty"] = None
    hp: Annotated[Setting | None, "HP drain"] = None
    sampling: Sampling | None = None
    spacing: Annotated[float | None, Range(exclusive_minimum=0, maximum=20),
                       "since 1.1: the widest jump, osu!pixels per ms of gap from the previous "
                       "object's end; default: what gives the target stars"] = None
    bpm: Annotated[GivenBpm | None,
                   "since 1.3: the song's tempo: the audio is timed at it (one red line, its "
                   "offset from the audio) instead of the song's maps' timing or an estimate"
                   ] = None
    meter: Annotated[int | None, Range(minimum=1, maximum=16),
                     "since 1.7: beats per bar (5 for 5/4): the audio is timed with it, as with "
                     "bpm; the estimate reads only 4 or 3"] = None


@dataclass(frozen=True)
class MapContinueParams:
    """The rest of a saved map from `from_ms`, keeping its objects before and its timing."""

    METHOD: ClassVar[str] = "map.continue"
    beatmap: Annotated[RelPath, "the .osu file, relative to Songs"]
    from_ms: Annotated[Millis, "objects from here on are generated"]
    until_ms: Annotated[Millis | None, "end of the generated part (> fromMs); default: the end"
                        " of the audio"] = None
    expected_md5: Annotated[Md5 | None, "MD5 of the .osu the client saw; the server refuses"
                            " (FILE_CHANGED) when the file differs"] = None
    write: Annotated[Literal["newDifficulty", "inPlace"],
                     "newDifficulty: a new .osu beside it; inPlace: overwrite after a backup"
                     ] = "newDifficulty"
    sampling: Sampling | None = None
    spacing: Annotated[float | None, Range(exclusive_minimum=0, maximum=20),
                       "since 1.1: the widest jump, osu!pixels per ms of gap from the previous "
                       "object's end; default: the map's own before fromMs"] = None

    def check(self) -> None:
        """The rule between fields that JSON Schema cannot say."""
        if self.until_ms is not None and self.until_ms <= self.from_ms:
            raise ValidationError("untilMs", "expected a number > fromMs")


@dataclass(frozen=True)
class JobAccepted:
    """The result of map.generate and map.continue: the job runs; notifications follow."""

    job_id: JobId


# job.cancel, job.list, server.status


@dataclass(frozen=True)
class JobCancelParams:
    METHOD: ClassVar[str] = "job.cancel"
    job_id: JobId


@dataclass(frozen=True)
class JobCancelResult:
    cancelled: Annotated[bool, "false when the job had already ended or was writing its map"]


@dataclass(frozen=True)
class JobListParams:
    METHOD: ClassVar[str] = "job.list"


@dataclass(frozen=True)
class JobInfo:
    job_id: JobId
    method: JobMethod
    state: JobState
    percent: Percent
    created_at: DateTime


@dataclass(frozen=True)
class JobListResult:
    jobs: Annotated[tuple[JobInfo, ...], Items(max_items=1024)]


@dataclass(frozen=True)
class ServerStatusParams:
    METHOD: ClassVar[str] = "server.status"


@dataclass(frozen=True)
class QueueInfo:
    length: Count
    capacity: Count


@dataclass(frozen=True)
class ServerStatusResult:
    version: Name
    uptime_s: Seconds
    queue: QueueInfo
    watching: Annotated[bool, "whether new song folders are being generated for"]
    model: ModelInfo
    songs_folder: Annotated[AbsPath | None, "absolute path of the Songs folder"] = None


# Notifications


@dataclass(frozen=True)
class JobProgress:
    METHOD: ClassVar[str] = "job.progress"
    job_id: JobId
    stage: Annotated[Label, "what the job is doing, e.g. queued, loading, decoding, writing"]
    percent: Percent


@dataclass(frozen=True)
class JobStats:
    objects: Annotated[Count, "hit objects written"]
    stars: Annotated[float, Range(minimum=0, maximum=1000), "star rating of the result"]
    duration_s: Annotated[Seconds, "how long the job ran"]
    timing: Annotated[Literal["map", "estimated", "none"] | None,
                      "since 1.1, map.generate: the song's own timing, timing estimated from "
                      "the audio, or none (the audio has no beat; objects unsnapped)"] = None
    attempts: Annotated[Count | None, "since 1.1, map.generate: generations run to get near "
                        "the requested stars (the nearest is written)"] = None
    alternative_bpm: Annotated[float | None, Range(minimum=20, maximum=1000),
                               "since 1.4, map.generate with estimated timing of one tempo: "
                               "the tempo the estimate ranked next (2x, 1/2, 3/2 or 2/3 of it), "
                               "the likeliest fix where the estimate is a multiple off; send it "
                               "as `bpm`"] = None
    bpm_tag: Annotated[float | None, Range(minimum=20, maximum=1000),
                       "since 1.5, map.generate with estimated timing: the tempo the audio "
                       "file's tags name (ID3 TBPM, a Vorbis BPM comment). Where the timing is "
                       "at it, the tag settled the estimate's octave; where not, the beats did "
                       "not bear it out (no simple multiple of the estimate, or no grid at it "
                       "that fits)"] = None
    tempo_from: Annotated[Literal["given", "tag", "audio"] | None,
                          "since 1.9, map.generate with estimated timing: what settled its "
                          "tempo, as timing.estimate says: the request's `bpm`, the audio "
                          "file's BPM tag, or the audio alone (the offset is always "
                          "estimated)"] = None


@dataclass(frozen=True)
class JobFinished:
    METHOD: ClassVar[str] = "job.finished"
    job_id: JobId
    path: Annotated[RelPath, "the written .osu, relative to Songs"]
    stats: JobStats
    backup_path: Annotated[RelPath | None, "inPlace only: the backup of the original"] = None


@dataclass(frozen=True)
class JobFailed:
    """A job ended with an error; code and data as in the error table (protocol.errors)."""

    METHOD: ClassVar[str] = "job.failed"
    job_id: JobId
    code: int
    message: LongText
    data: Any = None

    @classmethod
    def from_error(cls, job_id: str, error: Any) -> JobFailed:
        """From a ProtocolError (protocol.errors) raised by the job."""
        body = error.to_json()
        return cls(job_id, body["code"], body["message"], body.get("data"))


@dataclass(frozen=True)
class SongsDetected:
    """A new song folder finished copying into Songs."""

    METHOD: ClassVar[str] = "songs.detected"
    folder: RelPath


# The error object of an error response (protocol.errors.ProtocolError.to_json's shape).


@dataclass(frozen=True)
class ErrorObject:
    code: int
    message: LongText
    data: Any = None


# The registry: what the codec decodes, the schema publishes and `initialize` advertises.


class MethodSpec(NamedTuple):
    params: type
    result: type


METHODS: dict[str, MethodSpec] = {
    spec.params.METHOD: spec for spec in (
        MethodSpec(InitializeParams, InitializeResult),
        MethodSpec(MapGenerateParams, JobAccepted),
        MethodSpec(MapContinueParams, JobAccepted),
        MethodSpec(JobCancelParams, JobCancelResult),
        MethodSpec(JobListParams, JobListResult),
        MethodSpec(ServerStatusParams, ServerStatusResult),
        MethodSpec(TimingEstimateParams, TimingEstimateResult),
    )
}

NOTIFICATIONS: dict[str, type] = {
    cls.METHOD: cls for cls in (JobProgress, JobFinished, JobFailed, SongsDetected)
}


def all_capabilities() -> Capabilities:
    """Every method and notification of this protocol version, for InitializeResult."""
    return Capabilities(methods=tuple(METHODS), notifications=tuple(NOTIFICATIONS))
