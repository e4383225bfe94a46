"""Parse + tokenize of every osu!standard corpus map: kiai against the slider and fosu parsers.

Each round times every contender over the whole corpus, one after the other, so machine noise
hits them alike; the table gives the median round and each contender's time as a multiple of
kiai's. Inputs are normalised first (see `normalised`). kiai's work includes slider geometry
(durations) and tokenizing with the default preset;
slider builds its hit objects (curves included); fosu computes slider end times and paths.
"""

from __future__ import annotations

import statistics
import time

from corpus import standard_maps

from core.beatmap.parser import parse_bytes
from core.beatmap.writer import write_text
from core.tokens.tokenizer import tokenize
from core.tokens.vocab import DEFAULT, Vocab

ROUNDS = 5


VOCAB = Vocab(DEFAULT)


def kiai_parse_tokenize(maps, vocab=VOCAB):
    for name, data in maps:
        tokenize(parse_bytes(data, name).beatmap, vocab)


def slider_parse(maps):
    import slider

    for _, data in maps:
        slider.Beatmap.parse(data.decode("utf-8-sig", errors="replace")).hit_objects()


def fosu_parse(maps):
    import fosu

    for _, data in maps:
        fosu.parse(data, calculate_slider_end_times=True, calculate_slider_paths=True)


def normalised(maps):
    """The same maps written back by kiai with missing [Metadata] and [General] keys filled in:
    lazer's test maps often lack them, and `slider` refuses such maps. Every contender reads
    these bytes."""
    out = []
    for name, data in maps:
        beatmap = parse_bytes(data, name).beatmap
        for key in ("Title", "TitleUnicode", "Artist", "ArtistUnicode", "Creator", "Version",
                    "Source", "Tags"):
            beatmap.metadata.setdefault(key, "unknown")
        for key, value in (("BeatmapID", "0"), ("BeatmapSetID", "-1")):
            beatmap.metadata.setdefault(key, value)
        for key, value in (("AudioFilename", "audio.mp3"), ("AudioLeadIn", "0"),
                           ("PreviewTime", "-1"), ("Countdown", "0"), ("SampleSet", "Normal"),
                           ("StackLeniency", "0.7"), ("Mode", "0"), ("LetterboxInBreaks", "0"),
                           ("WidescreenStoryboard", "0")):
            beatmap.general.setdefault(key, value)
        out.append((name, write_text(beatmap).encode("utf-8")))
    return out


def usable(maps, contender):
    """Maps a contender can read at all; the comparison runs on maps every contender reads."""
    ok = []
    for item in maps:
        try:
            contender([item])
            ok.append(item)
        except Exception:  # a reference parser's own failure is data here, not a crash
            pass
    return ok


def main() -> None:
    maps = normalised(standard_maps())
    contenders = {"kiai (parse+tokenize)": kiai_parse_tokenize, "slider": slider_parse,
                  "fosu": fosu_parse}
    common = maps
    for name, contender in contenders.items():
        readable = usable(common, contender)
        if len(readable) < len(common):
            print(f"{name}: cannot read {len(common) - len(readable)} of the maps; left out")
        common = readable
    objects = sum(parse_bytes(d, n).beatmap.hit_objects.__len__() for n, d in common)
    times = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, contender in contenders.items():
            start = time.perf_counter()
            contender(common)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["kiai (parse+tokenize)"])
    print(f"{len(common)} osu!standard maps, {objects} objects, median of {ROUNDS} rounds")
    print(f"{'contender':<24}{'seconds':>10}{'objects/s':>12}{'x kiai time':>13}")
    for name, samples in times.items():
        t = statistics.median(samples)
        print(f"{name:<24}{t:>10.3f}{objects / t:>12.0f}{t / base:>13.2f}")


if __name__ == "__main__":
    main()
