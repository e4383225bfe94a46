"""What each token language keeps of real maps: tokenize, detokenize onto the map's own timing,
and compare object by object over every osu!standard corpus map.

Rows: `seed` read back the seed's way (bin centres, no snapping); `default` without snapping;
`default` with snapping to the map's beat ticks, as kiai writes maps. The bars for `default`
(snapped) are checked on every map: 100% of objects, time <= 5 ms, position <= 3 px, slider end
time <= 5 ms, slider end position <= 4 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from corpus import standard_maps

from core.beatmap.curves import slider_path
from core.beatmap.model import Slider, Spinner
from core.beatmap.parser import parse_bytes
from core.tokens.detokenizer import DetokenizeOptions, detokenize
from core.tokens.tokenizer import tokenize
from core.tokens.vocab import DEFAULT, SEED, Vocab

BARS = {"time": 5.0, "position": 3.0, "slider_end_time": 5.0, "slider_end_position": 4.0}


@dataclass
class Errors:
    objects: int = 0
    kept: int = 0
    type_combo_kept: int = 0
    tokens: int = 0
    time: list[float] = field(default_factory=list)
    position: list[float] = field(default_factory=list)
    slider_end_time: list[float] = field(default_factory=list)
    slider_end_position: list[float] = field(default_factory=list)
    spinner_end: list[float] = field(default_factory=list)


def compare(original, decoded, errors: Errors) -> None:
    errors.objects += len(original.hit_objects)
    errors.kept += min(len(original.hit_objects), len(decoded.hit_objects))
    for a, b in zip(original.hit_objects, decoded.hit_objects):
        errors.type_combo_kept += type(a) is type(b) and a.new_combo == b.new_combo
        errors.time.append(abs(a.time - b.time))
        if not isinstance(a, Spinner):
            errors.position.append(math.dist((a.x, a.y), (b.x, b.y)))
        if isinstance(a, Slider) and isinstance(b, Slider):
            errors.slider_end_time.append(abs(a.end_time - b.end_time))
            end_a = slider_path(a, original.format_version).end_position
            end_b = slider_path(b, decoded.format_version).end_position
            errors.slider_end_position.append(math.dist(end_a, end_b))
        if isinstance(a, Spinner) and isinstance(b, Spinner):
            errors.spinner_end.append(abs(a.end_time - b.end_time))


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p99 = np.percentile(values, [50, 99])
    return f"{p50:.1f}/{p99:.1f}/{max(values):.1f}"


def main() -> None:
    maps = [(name, parse_bytes(data, name).beatmap) for name, data in standard_maps()]
    rows = {
        "seed": (Vocab(SEED), DetokenizeOptions(snap=False)),
        "default (raw)": (Vocab(DEFAULT), DetokenizeOptions(snap=False)),
        "default (snapped)": (Vocab(DEFAULT), DetokenizeOptions(snap=True)),
    }
    failures: dict[str, list[str]] = {}
    print(f"{len(maps)} osu!standard maps, {sum(len(b.hit_objects) for _, b in maps)} objects")
    header = (f"{'preset':<19}{'kept':>7}{'type+NC':>8}{'time ms p50/p99/max':>22}"
              f"{'pos px':>17}{'slider end ms':>17}{'slider end px':>17}{'spinner end':>17}"
              f"{'tok/obj':>8}")
    print(header)
    for row, (vocab, options) in rows.items():
        total = Errors()
        for name, beatmap in maps:
            ids = tokenize(beatmap, vocab, snap=options.snap)
            decoded = detokenize(ids, beatmap, vocab, options)
            errors = Errors()
            compare(beatmap, decoded, errors)
            errors.tokens = len(ids)
            for key in vars(total):
                value = getattr(errors, key)
                setattr(total, key, getattr(total, key) + value)
            if row == "default (snapped)":
                for key, bar in BARS.items():
                    worst = max(getattr(errors, key), default=0.0)
                    if worst > bar:
                        failures.setdefault(key, []).append(f"{name.split('/')[-1]} ({worst:.1f})")
                if errors.kept < errors.objects:
                    failures.setdefault("objects", []).append(name)
        n = max(total.objects, 1)
        print(f"{row:<19}{100 * total.kept / n:>6.1f}%{100 * total.type_combo_kept / n:>7.1f}%"
              f"{stats(total.time):>22}{stats(total.position):>17}"
              f"{stats(total.slider_end_time):>17}{stats(total.slider_end_position):>17}"
              f"{stats(total.spinner_end):>17}{total.tokens / n:>8.1f}")
    print("\nbars for default (snapped) on every map:", "all met" if not failures else "")
    for key, names in failures.items():
        print(f"  {key} over {BARS.get(key, 0)}: {len(names)} maps: {', '.join(names)}")


if __name__ == "__main__":
    main()
