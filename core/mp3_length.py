"""The length of an mp3 that announces none, so that all of it is decoded.

libsndfile (through mpg123) decodes an mp3 to the length its Xing/Info header announces, and
without one to an estimate from the first frame's bitrate. That is right for a constant bitrate,
but a VBR mp3 without the header (a cutting tool dropped it, or `lame -t`) stops where the
estimate does: 2,078,276 of a 60 s file's 2,646,000 samples (session 32), and a map of it ends
early. Counting the MPEG frames (their headers give each one's length) tells how long it is;
a Xing frame that says so, put before the first frame, has all of it decoded. The frame is an
info frame (mpg123 outputs nothing for it) without LAME's delay fields: the decode keeps the
encoder's delay, as it did without a header and as osu! does.
"""

from __future__ import annotations

_BITRATES = {  # kbps by index, layer III
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
MIN_FRAMES = 8  # fewer consecutive frames found: not an mp3 stream to count


def frame_size(data: bytes, at: int) -> tuple[int, int] | None:
    """(length in bytes, samples) of the layer III frame whose header starts at `at`, or None."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[at + 1] >> 3) & 3, (data[at + 1] >> 1) & 3
    rate_index, bitrate_index = (data[at + 2] >> 2) & 3, data[at + 2] >> 4
    if version == 1 or layer != 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None  # reserved, not layer III, or free format
    mpeg1 = version == 3
    kbps = _BITRATES[1 if mpeg1 else 2][bitrate_index]
    rate = _RATES[version][rate_index]
    padding = (data[at + 2] >> 1) & 1
    return (144 if mpeg1 else 72) * kbps * 1000 // rate + padding, 1152 if mpeg1 else 576


def first_frame_offset(data: bytes) -> int:
    """Where the first frame starts: after an ID3v2 tag (and its footer) where there is one."""
    if data[:3] == b"ID3" and len(data) >= 10:
        # its size: four 7-bit bytes, excluding the 10-byte header and the optional footer
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
        return 10 + size + (10 if data[5] & 0x10 else 0)
    return 0


def count_frames(data: bytes) -> tuple[int, int, int] | None:
    """(first frame's offset, frames, samples) of the mp3 stream in `data`, walking frame to
    frame from the first header; None where no run of MIN_FRAMES frames starts near the start."""
    start = first_frame_offset(data)
    for at in range(start, min(start + 4096, len(data) - 4)):
        first = frame_size(data, at)
        if first is None:
            continue
        frames, samples, here = 0, 0, at
        while (found := frame_size(data, here)) is not None and here + found[0] <= len(data):
            frames, samples, here = frames + 1, samples + found[1], here + found[0]
        if frames >= MIN_FRAMES:
            return at, frames, samples
    return None


def with_length(data: bytes) -> bytes | None:
    """`data` with a Xing frame announcing its frame count before its first frame, or None where
    no stream is found to count."""
    counted = count_frames(data)
    if counted is None:
        return None
    at, frames, _ = counted
    header = bytes([0xFF, data[at + 1] | 0x01, data[at + 2] & 0xFD, data[at + 3]])  # no CRC,
    length, _ = frame_size(header, 0) or (0, 0)  # no padding
    mpeg1, mono = (data[at + 1] >> 3) & 3 == 3, data[at + 3] >> 6 == 3
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    tag = b"Xing" + (1).to_bytes(4, "big") + frames.to_bytes(4, "big")
    if length < 4 + side + len(tag):
        return None
    info = header + bytes(side) + tag
    return data[:at] + info + bytes(length - len(info)) + data[at:]
