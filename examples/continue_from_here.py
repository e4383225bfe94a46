"""Continue a saved map from a timestamp with the kiai daemon, printing progress.

    python examples/continue_from_here.py "Song/Artist - Song (me) [Hard].osu" --at 1:02.500
    python examples/continue_from_here.py ~/osu/Songs/123\\ Song/map.osu --at "01:02:500 (1,2) -"

MAP is relative to the osu! Songs folder, or an absolute path inside it. Save the map in the
editor first: the daemon reads the saved file. By default the result is a new difficulty beside
the map; --in-place overwrites the map after the daemon has backed it up. Either way the request
carries the MD5 of the file as this script read it (when it can), so the daemon refuses if the
file changes in between. Then reload: Ctrl+L in osu! stable's editor (F5 in song select for a new
difficulty); in lazer, "edit externally" and finish.

Ctrl+C cancels the job. Exit status: 0 written, 1 refused or failed, 2 usage, 3 the daemon
cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import sys
from pathlib import Path

from kiai_client import (
    EXIT_FAILED,
    EXIT_OK,
    KiaiClient,
    add_connection_arguments,
    format_time,
    locate,
    parse_time,
    read_token,
    run,
    speaks,
    url_of,
)

from protocol import (
    JobCancelParams,
    JobFailed,
    JobFinished,
    JobProgress,
    MapContinueParams,
    ProtocolError,
    Sampling,
    ServerStatusParams,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Times: 1:02.500, 62.5 (seconds), 62500ms, or the editor's 01:02:500 (1,2) -")
    parser.add_argument("map", metavar="MAP", help=".osu path, relative to Songs or absolute")
    parser.add_argument("--at", type=parse_time, required=True,
                        help="where the generated part starts")
    parser.add_argument("--until", type=parse_time, default=None,
                        help="where it ends (default: the end of the audio)")
    parser.add_argument("--spacing", type=float, default=None,
                        help="widest jump, osu!pixels per ms of gap (default: the map's own; "
                             "needs a protocol 1.1 server)")
    parser.add_argument("--draw-gaps", action="store_true",
                        help="draw when objects come too, not only what comes (default: each "
                             "gap is the model's likeliest; needs a protocol 1.2 server)")
    parser.add_argument("--in-place", action="store_true",
                        help="overwrite MAP (after a backup) instead of writing a new difficulty")
    add_connection_arguments(parser)
    args = parser.parse_args(argv)
    if args.until is not None and args.until <= args.at:
        parser.error("--until must be after --at")
    return args


def md5_of(path: Path | None) -> str | None:
    try:
        return hashlib.md5(path.read_bytes()).hexdigest() if path else None
    except OSError:
        return None  # not readable from here: the daemon checks nothing then


async def follow(client: KiaiClient, job_id: str, songs_folder: str | None) -> int:
    """Print the job's progress until it ends; the exit status."""
    last = None
    async for notification in client.notifications():
        event = notification.params
        if getattr(event, "job_id", None) != job_id:
            continue
        if isinstance(event, JobProgress):
            if (event.stage, round(event.percent)) != last:
                last = (event.stage, round(event.percent))
                print(f"[{event.percent:5.1f}%] {event.stage}", flush=True)
        elif isinstance(event, JobFinished):
            where = Path(songs_folder, event.path) if songs_folder else event.path
            print(f"wrote {where}: {event.stats.objects} objects, {event.stats.stars:.2f} stars,"
                  f" {event.stats.duration_s:.1f} s")
            if event.backup_path:
                print(f"backup of the original: {event.backup_path}")
            print("reload: Ctrl+L in the editor (stable), F5 in song select for a new difficulty")
            return EXIT_OK
        elif isinstance(event, JobFailed):
            print(f"failed: {event.message} (code {event.code})", file=sys.stderr)
            return EXIT_FAILED
    print("the daemon closed the connection before the job ended", file=sys.stderr)
    return EXIT_FAILED


async def main_async(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    async with KiaiClient.connect(url_of(args), token, "continue_from_here") as client:
        status = await client.call(ServerStatusParams())
        beatmap, local = locate(args.map, status.songs_folder)
        if args.spacing is not None and not speaks(client.server.protocol_version, 1):
            print(f"--spacing needs protocol 1.1; the daemon speaks "
                  f"{client.server.protocol_version}", file=sys.stderr)
            return EXIT_FAILED
        if args.draw_gaps and not speaks(client.server.protocol_version, 2):
            print(f"--draw-gaps needs protocol 1.2; the daemon speaks "
                  f"{client.server.protocol_version}", file=sys.stderr)
            return EXIT_FAILED
        params = MapContinueParams(
            beatmap=beatmap, from_ms=args.at, until_ms=args.until, expected_md5=md5_of(local),
            write="inPlace" if args.in_place else "newDifficulty", spacing=args.spacing,
            sampling=Sampling(draw_gaps=True) if args.draw_gaps else None)
        submit = asyncio.ensure_future(client.call(params))
        try:
            # shielded: Ctrl+C while the daemon is accepting the job must still learn its id
            accepted = await asyncio.shield(submit)
        except ProtocolError as e:
            print(f"refused: {e.message} (code {e.code})", file=sys.stderr)
            return EXIT_FAILED
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await cancel_job(client, (await asyncio.wait_for(submit, 2)).job_id)
            raise
        until = f" until {format_time(args.until)}" if args.until is not None else ""
        print(f"job {accepted.job_id}: continuing {beatmap} from {format_time(args.at)}{until}")
        try:
            return await follow(client, accepted.job_id, status.songs_folder)
        except asyncio.CancelledError:
            await cancel_job(client, accepted.job_id)
            raise


async def cancel_job(client: KiaiClient, job_id: str) -> None:
    """After Ctrl+C (Python 3.11+ cancels the main task): a job outlives its client, so cancel
    it explicitly; best effort."""
    with contextlib.suppress(Exception):
        result = await asyncio.wait_for(client.call(JobCancelParams(job_id)), 2)
        if result.cancelled:
            print(f"cancelled job {job_id}", file=sys.stderr)
        else:  # it had ended, or was writing: too late to stop it
            print(f"job {job_id} was not cancelled: it had finished or was writing its map",
                  file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
