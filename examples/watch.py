"""Print every notification the kiai daemon sends, one line each, until Ctrl+C.

    python examples/watch.py            # 12:00:01 job.progress   j-0042  37.5% decoding
    python examples/watch.py --json     # the raw JSON-RPC frames instead

Exit status: 0 when the daemon closes the connection, 3 when it cannot be reached, 130 on Ctrl+C.
"""

from __future__ import annotations

import argparse
import sys
import time

from kiai_client import EXIT_OK, KiaiClient, add_connection_arguments, read_token, run, url_of

from protocol import (
    JobFailed,
    JobFinished,
    JobProgress,
    ServerStatusParams,
    SongsDetected,
    encode_notification,
)


def describe(event: object) -> str:
    """One line for a notification's params."""
    if isinstance(event, JobProgress):
        return f"{event.job_id}  {event.percent:5.1f}% {event.stage}"
    if isinstance(event, JobFinished):
        stats = event.stats
        backup = f", backup {event.backup_path}" if event.backup_path else ""
        # timing estimated from the audio: the tempo to try should it be a multiple off
        other = (f"; if the beat is at {stats.alternative_bpm:g} BPM, ask again with bpm"
                 if stats.alternative_bpm is not None else "")
        if stats.bpm_tag is not None:  # protocol 1.5: the tempo the audio file's tags name
            other = f"; the file's BPM tag says {stats.bpm_tag:g}{other}"
        if stats.tempo_from == "given":  # protocol 1.9: timed at the tempo the request gave
            other = "; at the BPM asked for"
        return (f"{event.job_id}  wrote {event.path} ({stats.objects} objects,"
                f" {stats.stars:.2f} stars, {stats.duration_s:.1f} s{backup}{other})")
    if isinstance(event, JobFailed):
        return f"{event.job_id}  error {event.code}: {event.message}"
    if isinstance(event, SongsDetected):
        return f"new song folder {event.folder}"
    return repr(event)


async def main_async(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    async with KiaiClient.connect(url_of(args), token, "watch") as client:
        status = await client.call(ServerStatusParams())
        server = client.server
        print(f"connected to kiai {server.server_version} (protocol {server.protocol_version}),"
              f" model {server.model.name}; Songs: {status.songs_folder or 'unknown'};"
              f" watching for new songs: {'yes' if status.watching else 'no'}", flush=True)
        async for notification in client.notifications():
            if args.json:
                print(encode_notification(notification.params), flush=True)
            else:
                print(f"{time.strftime('%H:%M:%S')} {notification.method:<15}"
                      f" {describe(notification.params)}", flush=True)
    print("the daemon closed the connection", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the raw JSON-RPC frames")
    add_connection_arguments(parser)
    return run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
