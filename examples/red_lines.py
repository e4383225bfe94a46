"""Ask the kiai daemon for a song's timing (red lines), estimated from its audio.

    python examples/red_lines.py "1234567 Artist - Title"
    python examples/red_lines.py "1234567 Artist - Title/audio.mp3" --bpm 174
    python examples/red_lines.py ~/osu/Songs/1234567\\ Artist\\ -\\ Title --json

SONG is a song folder or an audio file, relative to the osu! Songs folder or an absolute path
inside it. The [TimingPoints] lines printed paste into the .osu (with the editor closed, or
reload it with Ctrl+L). Where the estimate may be a multiple off, stderr names the tempo to try
with --bpm. Nothing is written. Needs a protocol 1.6 daemon (timing.estimate).

Exit status: 0 timed, 1 refused or failed, 2 usage, 3 the daemon cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from kiai_client import (
    EXIT_FAILED,
    EXIT_OK,
    KiaiClient,
    add_connection_arguments,
    locate,
    read_token,
    run,
    speaks,
    url_of,
)

from protocol import ProtocolError, ServerStatusParams, TimingEstimateParams, TimingEstimateResult
from protocol.wire import to_wire

AUDIO_SUFFIXES = (".mp3", ".ogg", ".wav")  # the audio the daemon reads (core.song_input)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("song", metavar="SONG",
                        help="song folder or audio file, relative to Songs or absolute")
    parser.add_argument("--bpm", type=in_range(float, 20, 1000), default=None,
                        help="the song's tempo (20-1000), where you know it: only the offset "
                             "is estimated")
    parser.add_argument("--meter", type=in_range(int, 1, 16), default=None,
                        help="beats per bar, 1-16 (default: 4, or 3 where the accents say so)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_connection_arguments(parser)
    return parser.parse_args(argv)


def in_range(kind: type, low: float, high: float) -> Callable[[str], float]:
    """An argparse type: `kind` within [low, high] (timing.estimate's schema), so that a bad
    value is a usage error (exit 2), not a refused request."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:  # nan fails this too
            raise argparse.ArgumentTypeError(f"{text} is not within {low:g}..{high:g}")
        return value
    return parse


def describe(result: TimingEstimateResult) -> str:
    """Where the tempo came from and what to try should it be wrong, for stderr."""
    first = result.timing_points[0]
    where = (f"{len(result.timing_points)} red lines" if len(result.timing_points) > 1
             else f"{first.bpm:g} BPM")
    where += f" from {first.time_ms:.0f} ms, {first.meter}/4, for {result.audio}"
    if result.tempo_from == "given":
        return f"{where}: the offset estimated at the given tempo"
    source = ("the audio and its BPM tag" if result.tempo_from == "tag" else "the audio")
    note = f"{where}: estimated from {source}"
    if result.alternative_bpm is not None:
        note += f"; if the beat is at {result.alternative_bpm:g} BPM, ask again with --bpm " \
                f"{result.alternative_bpm:g}"
    if result.bpm_tag is not None and result.tempo_from == "audio":
        note += f"; the file's BPM tag says {result.bpm_tag:g}, which the beats did not bear out"
    return note


async def main_async(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    async with KiaiClient.connect(url_of(args), token, "red_lines") as client:
        if not speaks(client.server.protocol_version, 6):
            print(f"timing.estimate needs protocol 1.6; the daemon speaks "
                  f"{client.server.protocol_version}", file=sys.stderr)
            return EXIT_FAILED
        status = await client.call(ServerStatusParams())
        song, _ = locate(args.song, status.songs_folder, "SONG")
        is_audio = song.lower().endswith(AUDIO_SUFFIXES)
        params = TimingEstimateParams(song_folder=None if is_audio else song,
                                      audio=song if is_audio else None,
                                      bpm=args.bpm, meter=args.meter)
        try:
            result = await client.call(params)
        except ProtocolError as e:
            print(f"refused: {e.message} (code {e.code})", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        print(json.dumps(to_wire(result), indent=2, ensure_ascii=False))
        return EXIT_OK
    print("[TimingPoints]")
    print("\n".join(result.osu_lines))
    print(describe(result), file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
