"""Encode rendered audio as the bytes of an audio file, identical for identical samples.

libsndfile's Ogg writer picks the stream's serial number at random (`psf_rand_int32`, seeded
from the clock), so two encodes of the same samples differ in bytes 14..17 and the CRC of every
page; the Vorbis packets themselves are deterministic. We rewrite the serial to a value the
caller chooses and recompute each page's CRC, which makes an OGG file a function of its samples
(for one libsndfile/libvorbis build: Vorbis encoding is floating point, so another build or CPU
may round differently). WAV is written as 16-bit PCM, which has no such caveat.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import soundfile as sf

FORMATS = ("ogg", "wav")
OGG_BLOCK = 1 << 15  # frames per write call

# Ogg page header layout (RFC 3533 §6): "OggS", version, flags, granule (8), serial (4),
# sequence (4), CRC (4), segment count, segment table.
_SERIAL_AT = 14
_CRC_AT = 22
_SEGMENTS_AT = 26
_HEADER_SIZE = 27
# Reverses the bits of each byte: the Ogg CRC is zlib's CRC-32 polynomial, unreflected.
_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_supported() -> bool:
    """Whether this libsndfile can write Ogg/Vorbis (builds before 1.0.18 or without it cannot)."""
    return "VORBIS" in sf.available_subtypes("OGG")


def encode(samples: np.ndarray, sample_rate: int, fmt: str, serial: int = 0) -> bytes:
    """The file bytes of mono float `samples` (N,) in [-1, 1]; `serial` names the Ogg stream."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}; choose from {FORMATS}")
    buffer = io.BytesIO()
    if fmt == "ogg":
        with sf.SoundFile(buffer, "w", sample_rate, 1, format="OGG", subtype="VORBIS") as f:
            # In blocks: libvorbis alloca()s a buffer the size of everything written so far in
            # one call, and overflows the stack on ~90 s at 44.1 kHz (libsndfile#1095,
            # python-soundfile#426: a segfault, not an exception).
            for start in range(0, len(samples), OGG_BLOCK):
                f.write(samples[start:start + OGG_BLOCK])
        return set_ogg_serial(buffer.getvalue(), serial)
    sf.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """`data` (a single-stream Ogg file) with every page's serial set to `serial`, CRCs redone."""
    out = bytearray(data)
    offset = 0
    while offset < len(out):
        if out[offset:offset + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {offset}")
        segments = out[offset + _SEGMENTS_AT]
        table = out[offset + _HEADER_SIZE:offset + _HEADER_SIZE + segments]
        end = offset + _HEADER_SIZE + segments + sum(table)
        struct.pack_into("<I", out, offset + _SERIAL_AT, serial & 0xFFFF_FFFF)
        struct.pack_into("<I", out, offset + _CRC_AT, 0)
        struct.pack_into("<I", out, offset + _CRC_AT, ogg_crc(bytes(out[offset:end])))
        offset = end
    return bytes(out)


def ogg_crc(page: bytes) -> int:
    """Ogg's page checksum: CRC-32 (poly 0x04C11DB7), not reflected, init 0, no final xor.

    zlib computes the reflected variant in C; reflecting the input bytes and the result turns one
    into the other, and the xor with all-ones undoes zlib's init and final inversion (a pure
    Python table loop would take ~0.3 s per megabyte).
    """
    reflected = zlib.crc32(page.translate(_REVERSED), 0xFFFF_FFFF) ^ 0xFFFF_FFFF
    return int(f"{reflected:032b}"[::-1], 2)
