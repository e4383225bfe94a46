"""core.audio and core.feature_cache on the corpus's real tracks, and on broken copies of them."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from corpus_files import require_corpus, resource

from core import audio as audio_module
from core import feature_cache
from core.audio import (
    FRAME_MS,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    AudioError,
    audio_features,
    frame_of_ms,
    load_audio,
    load_audio_bytes,
    log_mel,
    ms_of_frame,
)
from core.feature_cache import FeatureCache
from core.mp3_length import frame_size

TRACKS = [  # (archive, member): real songs, read out of their .osz without extracting
    ("triangles.osz", "audio.mp3"),
    ("circles.osz", "circles.ogg"),
    ("welcome.osz", "welcome.ogg"),
]


def track(archive: str, member: str) -> bytes:
    with zipfile.ZipFile(require_corpus() / "osu-resources" / archive) as z:
        return z.read(member)


def sample(name: str):
    return resource(require_corpus(), name, "Samples")


def wav_bytes(audio: np.ndarray, rate: int, container: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=container)
    return buffer.getvalue()


def test_frame_helpers():
    assert HOP_LENGTH * 1000 == SAMPLE_RATE * FRAME_MS  # a whole number of samples per frame
    assert [frame_of_ms(ms) for ms in (0, 2.4, 2.5, 7.6, 62_500)] == [0, 0, 1, 2, 12_500]
    assert frame_of_ms(-10) == -2
    for ms in np.linspace(0, 300_000, 1001):
        assert abs(ms_of_frame(frame_of_ms(ms)) - ms) <= FRAME_MS / 2


@pytest.mark.parametrize(("archive", "member"), TRACKS)
def test_real_track_frames_match_its_duration(archive, member):
    data = track(archive, member)
    info = sf.info(io.BytesIO(data))
    audio = load_audio_bytes(data, member)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == math.ceil(info.frames * SAMPLE_RATE / info.samplerate)
    features = log_mel(audio)
    assert features.shape == (N_MELS, math.ceil(len(audio) / HOP_LENGTH))
    assert abs(features.shape[1] * FRAME_MS - info.duration * 1000) <= FRAME_MS
    assert torch.isfinite(features).all()
    assert features.max() == 1.0 and features.min() >= -1.0  # peak-normalised
    assert features.std(dim=1).mean() > 0.1  # each band changes over time
    assert features.std(dim=0).mean() > 0.1  # and frames are not flat across bands


@pytest.mark.parametrize("name", ["test-sample.mp3", "test-sample.ogg"])
def test_load_from_a_path(name):
    path = sample(name)
    audio = load_audio(path)
    assert len(audio) == math.ceil(sf.info(path).frames * SAMPLE_RATE / sf.info(path).samplerate)
    assert torch.equal(audio_features(path), log_mel(audio))


def test_mp3_and_ogg_of_one_sample_are_aligned():
    """mpg123 trims the LAME encoder delay: the mp3's onsets sit on the ogg's, not ~25 ms late."""
    mp3, ogg = audio_features(sample("test-sample.mp3")), audio_features(sample("test-sample.ogg"))
    assert mp3.shape == ogg.shape

    def onsets(features):  # (frames - 1,) spectral flux
        return torch.relu(features.diff(dim=1)).sum(0)

    a, b = onsets(mp3), onsets(ogg)
    n = len(a) - 8
    correlation = {lag: torch.corrcoef(torch.stack([a[4 + lag:4 + lag + n], b[4:4 + n]]))[0, 1]
                   for lag in range(-4, 5)}
    assert max(correlation, key=correlation.get) == 0
    assert correlation[0] > 0.9


def test_mp3_start_is_where_osu_puts_it():
    """osu! (stable and lazer: BASS with MP3_OLDGAPS) trims an mp3's encoder and decoder delay
    (576 + 529 samples from LAME) only where a LAME/Xing header announces it, and keeps both
    where there is none; mpg123 under libsndfile does the same, so beatmap time 0 is the same
    sample in both. A decoder change that trimmed headerless files would move their maps'
    timing by 25 ms."""
    rate = 44_100
    clicks = np.zeros(rate * 2, dtype=np.float32)
    clicks[rate // 2: rate // 2 + 30] = 0.8
    tagged = wav_bytes(clicks, rate, "MP3")
    assert b"Xing" in tagged[:1024] or b"Info" in tagged[:1024]
    header = tagged[:4]  # the first frame carries the header; MPEG-1 layer III at 44.1 kHz
    kbps = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320][header[2] >> 4]
    bare = tagged[144 * kbps * 1000 // rate + ((header[2] >> 1) & 1):]  # without that frame

    def first_click(data: bytes) -> int:
        audio, got = sf.read(io.BytesIO(data), dtype="float32")
        assert got == rate
        return int(np.argmax(np.abs(audio) > 0.3))

    assert first_click(tagged) == rate // 2
    assert first_click(bare) == rate // 2 + 576 + 529


def test_clicks_land_on_their_frames():
    """Through decode, resampling and the STFT, a click at t ms peaks on frame_of_ms(t)."""
    rate, clicks_ms = 44_100, [1000.0, 1501.0, 2008.9, 2513.3]
    audio = np.zeros((rate * 3, 2), dtype=np.float32)
    for ms in clicks_ms:
        audio[round(ms * rate / 1000)] = 0.9
    energy = log_mel(load_audio_bytes(wav_bytes(audio, rate), "clicks.wav")).sum(0)
    for ms in clicks_ms:
        around = frame_of_ms(ms) - 10
        assert around + int(energy[around:around + 21].argmax()) == frame_of_ms(ms)


def test_log_mel_is_gain_invariant_and_matches_one_unchunked_transform():
    audio = load_audio_bytes(track("welcome.osz", "welcome.ogg"), "welcome.ogg")[:SAMPLE_RATE * 20]
    features = log_mel(audio)
    assert torch.allclose(log_mel(audio * 0.05), features, atol=1e-4)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS,
        f_max=SAMPLE_RATE / 2, center=True, pad_mode="constant", norm="slaney",
        mel_scale="slaney")(torch.from_numpy(audio))[:, :features.shape[1]]
    log = mel.clamp(min=1e-10).log10()
    reference = (torch.maximum(log, log.max() - 8) - log.max() + 4) / 4
    assert torch.allclose(features, reference, atol=1e-4)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(AudioError, match="missing") as missing:
        load_audio(tmp_path / "gone.mp3")
    assert missing.value.file == str(tmp_path / "gone.mp3")
    (tmp_path / "empty.ogg").write_bytes(b"")
    with pytest.raises(AudioError, match="empty") as empty:
        load_audio(tmp_path / "empty.ogg")
    assert "empty.ogg" in str(empty.value)


def test_a_jpeg_named_wav_is_not_audio():
    path = sample("corrupt.wav")
    with pytest.raises(AudioError, match="not audio: the file is a JPEG image") as error:
        load_audio(path)
    assert error.value.file == str(path) and str(path) in str(error.value)
    assert isinstance(error.value.__cause__, sf.SoundFileError)  # libsndfile's error, wrapped


def test_garbage_bytes_are_not_audio():
    with pytest.raises(AudioError, match="not audio") as error:
        load_audio_bytes(np.random.default_rng(0).bytes(50_000), "noise.bin")
    assert error.value.__cause__ is not None


@pytest.mark.parametrize("kind", ["mp3", "ogg", "wav"])
def test_truncated_copies_are_refused(tmp_path, kind):
    if kind == "mp3":
        data = track("triangles.osz", "audio.mp3")
    elif kind == "ogg":
        data = sample("test-sample.ogg").read_bytes()
    else:
        data = wav_bytes(load_audio(sample("test-sample.ogg")), SAMPLE_RATE)
    load_audio_bytes(data, f"whole.{kind}")  # the whole file is fine
    path = tmp_path / f"cut.{kind}"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(AudioError, match="truncated") as error:
        load_audio(path)
    assert error.value.file == str(path)


@pytest.mark.parametrize("level", [0.0, 1e-5])  # digital silence; noise at -100 dBFS
@pytest.mark.parametrize("container", ["WAV", "MP3"])
def test_silent_audio_is_refused(level, container):
    audio = np.random.default_rng(0).standard_normal((44_100 * 2, 2)).astype(np.float32) * level
    with pytest.raises(AudioError, match="silent"):
        load_audio_bytes(wav_bytes(audio, 44_100, container), f"silence.{container.lower()}")


def test_channels_that_cancel_are_read_from_the_loudest_one():
    """A stereo file whose right channel is the left with its polarity flipped: osu! plays it at
    full volume, and the channels' mean is silence (QA, session 32: refused as silent)."""
    circles = load_audio_bytes(track("circles.osz", "circles.ogg"), "c.ogg")[:10 * SAMPLE_RATE]
    flipped = load_audio_bytes(wav_bytes(np.stack([circles, -circles], 1), SAMPLE_RATE), "x.wav")
    left = load_audio_bytes(wav_bytes(np.stack([circles, 0 * circles], 1), SAMPLE_RATE), "l.wav")
    assert np.sqrt(np.mean(flipped ** 2)) > 0.5 * np.sqrt(np.mean(circles ** 2))
    assert np.allclose(flipped, 2 * left, atol=1e-4)  # the left channel, not half of it
    wide = 0.5 * np.stack([circles, np.roll(circles, SAMPLE_RATE)], 1)  # nothing cancels
    assert np.allclose(load_audio_bytes(wav_bytes(wide, SAMPLE_RATE), "w.wav"), wide.mean(1),
                       atol=1e-4)


def test_a_long_file_decodes_block_by_block_to_the_whole(monkeypatch):
    """The decode reads a few blocks at a time (an hour's WAV had peaked at 4.5 GB read whole):
    blocks smaller than the file, and a header that undercounts the frames, give every sample."""
    data = track("triangles.osz", "audio.mp3")
    whole = load_audio_bytes(data, "audio.mp3")
    monkeypatch.setattr(audio_module, "DECODE_BLOCK", 4096)
    assert np.array_equal(load_audio_bytes(data, "audio.mp3"), whole)
    frames = sf.info(io.BytesIO(data)).frames
    with sf.SoundFile(io.BytesIO(data)) as f:
        mono, energy = audio_module._read_mono(f, frames // 3, None)
    assert len(mono) == frames and energy.shape == (3,)


@pytest.mark.parametrize("rate", [44_100, 48_000, 22_050])
def test_resampling_piece_by_piece_is_torchaudios_resample(monkeypatch, rate):
    """The resample runs a few of the kernel's strides at a time (no padded copy of a whole
    song): the same samples as torchaudio's Resample over the whole, whatever the pieces."""
    circles = load_audio_bytes(track("circles.osz", "circles.ogg"), "c.ogg")[:7 * SAMPLE_RATE]
    source = torchaudio.functional.resample(torch.from_numpy(circles), SAMPLE_RATE, rate)
    source = source.numpy()[:len(source) - 17]  # a length no whole number of strides
    whole = torchaudio.transforms.Resample(rate, SAMPLE_RATE)(torch.from_numpy(source)).numpy()
    monkeypatch.setattr(audio_module, "RESAMPLE_BLOCKS", 301)
    pieces = audio_module._at_sample_rate(source, rate)
    assert len(pieces) == math.ceil(len(source) * SAMPLE_RATE / rate)
    assert np.allclose(pieces[:len(whole)], whole, atol=1e-5)
    assert np.array_equal(pieces[:len(whole)], whole) or rate != 44_100


def test_a_vbr_mp3_without_its_length_header_is_decoded_whole():
    """libsndfile decodes a headerless mp3 to the length its first frame's bitrate suggests: a
    VBR file stopped at 63% (session 32). kiai counts the frames and decodes the rest too, the
    tail joined at the same offset to the music as the head (osu!'s: the encoder delay kept)."""
    rate = 44_100
    music = torchaudio.functional.resample(torch.from_numpy(load_audio_bytes(
        track("circles.osz", "circles.ogg"), "c.ogg")[:20 * SAMPLE_RATE]), SAMPLE_RATE, rate)
    music = music.numpy()
    encoded = io.BytesIO()
    sf.write(encoded, music, rate, format="MP3", bitrate_mode="VARIABLE", compression_level=0.3)
    data = encoded.getvalue()
    assert audio_module._has_xing_header(data)
    headerless = data[frame_size(data, 0)[0]:]  # the Xing frame dropped, as cutting tools do
    assert not audio_module._has_xing_header(headerless)
    with sf.SoundFile(io.BytesIO(headerless)) as f:
        alone = f.read(dtype="float32")
    assert len(alone) < 0.9 * len(music)  # what libsndfile gives
    mono, _, _ = audio_module._decode(headerless, "cut.mp3")
    assert len(mono) >= len(music)
    assert np.allclose(mono[:len(alone)], alone, atol=1e-6)  # the head as before

    def offset(at: int) -> int:  # where music[at:] sits in the decode
        window = music[at:at + 4096]
        errors = [np.abs(mono[at + k:at + k + 4096] - window).mean() for k in range(2400)]
        return int(np.argmin(errors))
    assert offset(rate) == offset(len(music) - 2 * rate)  # a second in, and 2 s from the end


def test_cache_hits_the_same_content_under_two_names(tmp_path):
    data = sample("test-sample.ogg").read_bytes()
    cache = FeatureCache(tmp_path / "cache")
    first = cache.features(data, "beatmaps/a.osz::test-sample.ogg")
    second = cache.features(data, "beatmaps/b.osz::renamed.ogg")
    from_path = cache.features(sample("test-sample.ogg"))
    assert (cache.misses, cache.hits) == (1, 2)
    assert torch.equal(first, second) and torch.equal(first, from_path)
    # float16 storage: at most half of float16's spacing (2**-11 in [-1, 1]) from float32
    exact = log_mel(load_audio_bytes(data, "test-sample.ogg"))
    assert (first - exact).abs().max() <= 2**-12
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".npy"  # no temporary file left behind
    stored = np.load(entries[0], allow_pickle=False)
    assert stored.dtype == np.float16 and stored.shape == tuple(first.shape)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape", "nan"])
def test_a_corrupted_entry_is_recomputed(tmp_path, damage):
    data = sample("test-sample.mp3").read_bytes()
    cache = FeatureCache(tmp_path)
    expected = cache.features(data, "test-sample.mp3")
    [entry] = tmp_path.iterdir()
    if damage == "garbage":
        entry.write_bytes(b"\x93NUMPY not really" * 10)
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:1000])
    elif damage == "wrong shape":
        np.save(entry, np.zeros((3, 3), dtype=np.float16))
    else:
        stored = np.load(entry)
        stored[5, 5] = np.nan
        np.save(entry, stored)
    assert torch.equal(cache.features(data, "test-sample.mp3"), expected)
    assert cache.misses == 2
    assert torch.equal(cache.features(data, "test-sample.mp3"), expected)  # rewritten
    assert (cache.misses, cache.hits) == (2, 1)
    assert list(tmp_path.iterdir()) == [entry]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def refuse(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(feature_cache.os, "replace", refuse)
    cache = FeatureCache(tmp_path)
    features = cache.features(sample("test-sample.ogg"))
    assert features.shape[0] == N_MELS  # the features still come back
    assert list(tmp_path.iterdir()) == []


def test_bad_audio_through_the_cache(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(AudioError, match="missing"):
        cache.features(tmp_path / "gone.ogg")
    with pytest.raises(AudioError, match="JPEG"):
        cache.features(sample("corrupt.wav"))
    assert list((tmp_path / "cache").iterdir()) == []


def test_ctrl_c_during_a_decode_is_not_lost(monkeypatch):
    """libsndfile reads through a Python callback, where cffi prints and drops a
    KeyboardInterrupt; the read then came back short and `kiai generate` mapped part of the
    song and exited 0. Ctrl+C must stop the decode's caller once the decode is over."""
    import signal
    import types

    import core.audio as audio_module

    class InterruptedRead(io.BytesIO):
        def readinto(self, buffer):
            if self.tell() > 0:  # mid-file, as a mapper's Ctrl+C lands
                signal.raise_signal(signal.SIGINT)
            return super().readinto(buffer)

    t = np.arange(5 * 22050) / 22050
    out = io.BytesIO()
    sf.write(out, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050, format="WAV")
    monkeypatch.setattr(audio_module, "io", types.SimpleNamespace(BytesIO=InterruptedRead))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        load_audio_bytes(out.getvalue(), "song.wav")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
