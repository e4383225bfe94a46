"""The musical score of a synthetic song: tempo, meter, sections, drum hits and pitched notes.

Everything is placed on ticks (a fixed fraction of a beat), so the audio (`render`) and the
beatmaps (`mapper`) are two views of one score and agree to the sample: every mapped object sits
on a note the audio plays, and every tick is a beat-snap tick of the map's timing points.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

import numpy as np

DRUMS = ("kick", "snare", "hat", "crash")
PITCHED = ("bass", "lead")
INSTRUMENTS = DRUMS + PITCHED

# (beats per measure, ticks per beat, weight). Ticks per beat 4 is straight 1/4 snap, 3 a
# shuffle (1/3 snap), and "6/8-ish" is six eighth-note beats (osu!'s meter 6).
METERS = ((4, 4, 0.40), (3, 4, 0.15), (4, 3, 0.15), (5, 4, 0.10), (6, 4, 0.20))
KICK_BEATS = {3: (0,), 4: (0, 2), 5: (0, 3), 6: (0,)}
SNARE_BEATS = {3: (2,), 4: (1, 3), 5: (2, 4), 6: (3,)}
BPM_RANGE = (80, 220)  # the beat's tempo; a 6/8 song's beat is the eighth note
BPM_RANGE_EIGHTHS = (150, 220)
TEMPO_CHANGE_CHANCE = 0.3
TEMPO_FACTORS = (0.75, 0.8, 1.25, 1.5)
OUTRO_MS = 3000  # a held final chord, mapped as a spinner: at least this long, one or two measures
# A stop before a chorus: the drums drop out under one held chord, mapped as a spinner, and the
# song goes on. Real maps put spinners mid-song; with only the outro's, the starter took every
# spinner for the end and mapped nothing after it.
STOP_CHANCE = 0.25  # for each chorus after the first, until a song has one stop
STOP_MS = 2000  # at least this long (whole measures)
TAIL_MS = 1500  # the final chord's release after the last measure
MAX_SECTIONS = 1000
FULL_SONG_MS = 80_000  # songs this long or longer get the plan's full section lengths

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (0, 3, 5, 4))
# Section plan: (name, possible energies, measures). Energy 0 is calm and sustained, 3 dense.
PLAN = (("intro", (0,), 4), ("verse", (1, 2), 8), ("chorus", (3,), 8), ("verse", (1,), 8),
        ("chorus", (3,), 8), ("bridge", (0, 1), 4), ("chorus", (3,), 8))
# Hi-hat velocity per energy on (the beat, the half beat, other ticks), 0 for none: quieter off
# the beat, so each difficulty finds the finer rhythm it maps (mapper.LEVELS' thresholds).
HATS = {0: (0, 0, 0), 1: (0.55, 0.45, 0), 2: (0.6, 0.5, 0), 3: (0.65, 0.55, 0.4)}
# Lead rhythm per energy: note lengths in beats to draw from, and the chance of a rest.
LEAD_RHYTHM = {0: ((2.0, 3.0, 4.0), 0.0), 1: ((1.0, 1.5, 2.0, 2.0, 0.5), 0.2),
               2: ((0.5, 1.0, 1.0, 1.5, 2.0), 0.2), 3: ((0.25, 0.5, 0.5, 1.0, 1.5), 0.2)}


@dataclass(frozen=True)
class Tempo:
    start_tick: int
    start_ms: int  # whole ms, as the uninherited timing point that starts it is written
    beat_ms: float


@dataclass(frozen=True)
class Section:
    name: str
    start_tick: int
    end_tick: int
    energy: int  # 0 calm .. 3 dense


@dataclass(frozen=True)
class Note:
    tick: int
    instrument: str
    length: int = 0  # sustain in ticks (pitched notes); drums ring on their own
    pitch: int = 0  # MIDI note number; 0 for drums
    velocity: float = 1.0


@dataclass(frozen=True)
class Score:
    meter: int  # beats per measure
    ticks_per_beat: int
    tempos: tuple[Tempo, ...]
    sections: tuple[Section, ...]
    notes: tuple[Note, ...]  # sorted by tick, then instrument
    end_tick: int  # where the final chord stops

    @property
    def ticks_per_measure(self) -> int:
        return self.meter * self.ticks_per_beat

    def tempo_at(self, tick: float) -> Tempo:
        index = bisect.bisect_right([t.start_tick for t in self.tempos], tick) - 1
        return self.tempos[max(index, 0)]

    def ms(self, tick: float) -> float:
        """The exact time of `tick` in ms (a float; osu! writes objects at its floor)."""
        tempo = self.tempo_at(tick)
        return tempo.start_ms + (tick - tempo.start_tick) * tempo.beat_ms / self.ticks_per_beat

    @property
    def duration_ms(self) -> float:
        return self.ms(self.end_tick) + TAIL_MS


def compose(rng: np.random.Generator, duration_s: float,
            stops: np.random.Generator | None = None) -> Score:
    """A random song of about `duration_s` seconds (at least a few measures, whatever the tempo).

    `stops` draws whether a chorus after the first has a stop before it (one at most; none
    without `stops`): its own stream, so a song that draws none is the song it was before.
    """
    meter, tpb, _ = METERS[rng.choice(len(METERS), p=[m[2] for m in METERS])]
    key = int(rng.integers(45, 57))  # the bass's root, A2..G#3
    scale = SCALES[str(rng.choice(list(SCALES)))]
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    tempos, sections = _plan(rng, meter, tpb, duration_s * 1000 - TAIL_MS, stops)
    score = Score(meter, tpb, tempos, sections, (), sections[-1].end_tick)
    notes = _write_notes(rng, score, key, scale, progression)
    notes.sort(key=lambda n: (n.tick, INSTRUMENTS.index(n.instrument)))
    return Score(meter, tpb, tempos, sections, tuple(notes), score.end_tick)


def _plan(rng: np.random.Generator, meter: int, tpb: int, target_ms: float,
          stops: np.random.Generator | None = None
          ) -> tuple[tuple[Tempo, ...], tuple[Section, ...]]:
    """Tempi and sections filling `target_ms`; at most one tempo change, at a section start;
    stops before choruses as `stops` draws them."""
    low, high = BPM_RANGE_EIGHTHS if meter == 6 else BPM_RANGE
    bpm = int(rng.integers(low, high + 1))
    tempos = [Tempo(0, int(rng.integers(300, 2000)), 60_000 / bpm)]
    change_at = int(rng.integers(2, 4)) if rng.random() < TEMPO_CHANGE_CHANCE else -1
    sections: list[Section] = []
    tick = 0
    for index in range(MAX_SECTIONS):
        # After the plan's end, repeat it from the first chorus on.
        name, energies, measures = PLAN[index if index < len(PLAN)
                                        else 2 + (index - 2) % (len(PLAN) - 2)]
        # Short songs get short sections, so that they still have a verse and a chorus.
        measures = max(1, round(measures * min(1.0, target_ms / FULL_SONG_MS)))
        last = tempos[-1]
        now_ms = last.start_ms + (tick - last.start_tick) * last.beat_ms / tpb
        if index == change_at:
            new_bpm = int(np.clip(round(bpm * rng.choice(TEMPO_FACTORS)), low, high))
            if new_bpm != bpm:
                # Whole ms, as the timing point is written: the audio follows the written grid.
                now_ms = round(now_ms)
                tempos.append(Tempo(tick, now_ms, 60_000 / new_bpm))
        measure_ms = tempos[-1].beat_ms * meter
        outro = 1 if measure_ms >= OUTRO_MS else 2
        room = int((target_ms - now_ms) // measure_ms) - outro
        if room < 1 and sections:
            break
        stop = math.ceil(STOP_MS / measure_ms)
        if name == "chorus" and any(s.name == "chorus" for s in sections) \
                and not any(s.name == "stop" for s in sections) and stops is not None \
                and room > stop + 1 and stops.random() < STOP_CHANCE:
            sections.append(Section("stop", tick, tick + stop * meter * tpb, 0))
            tick, room = tick + stop * meter * tpb, room - stop
        # A section takes at most half the room left, so a short song still has a chorus.
        measures = max(1, min(measures, room // 2))
        energy = int(rng.choice(energies))
        end = tick + measures * meter * tpb
        sections.append(Section(name, tick, end, energy))
        tick = end
    outro = 1 if tempos[-1].beat_ms * meter >= OUTRO_MS else 2
    sections.append(Section("outro", tick, tick + outro * meter * tpb, 0))
    return tuple(tempos), tuple(sections)


def _write_notes(rng: np.random.Generator, score: Score, key: int, scale: tuple[int, ...],
                 progression: tuple[int, ...]) -> list[Note]:
    notes: list[Note] = []
    tpm = score.ticks_per_measure
    lead_pitch = key + 24
    measure_index = 0
    for section in score.sections[:-1]:
        if section.name == "stop":  # a crash, a kick and the chord, held to the next section
            degree = progression[measure_index % len(progression)]
            root = key + _scale_tone(scale, degree)
            length = section.end_tick - section.start_tick
            notes += _held_chord(section.start_tick, length, root)
            measure_index += length // tpm
            continue
        for start in range(section.start_tick, section.end_tick, tpm):
            degree = progression[measure_index % len(progression)]
            chord = [key + _scale_tone(scale, degree + step) for step in (0, 2, 4)]
            first = start == section.start_tick
            # A snare fill into the next section, and every fourth measure of a dense one.
            fill = section.energy == 3 and (start + tpm == section.end_tick
                                            or (start - section.start_tick) // tpm % 4 == 3)
            notes += _drums(rng, score, start, section.energy, first, fill)
            notes += _bass(score, start, section.energy, chord[0])
            lead, lead_pitch = _lead(rng, score, start, section.energy, chord, scale, key,
                                     lead_pitch)
            notes += lead
            measure_index += 1
    # The outro: one crash, kick and chord held to the end.
    outro = score.sections[-1]
    notes += _held_chord(outro.start_tick, outro.end_tick - outro.start_tick, key)
    return notes


def _held_chord(start: int, length: int, root: int) -> list[Note]:
    return [Note(start, "crash"), Note(start, "kick"), Note(start, "bass", length, root),
            Note(start, "lead", length, root + 24)]


def _scale_tone(scale: tuple[int, ...], degree: int) -> int:
    return scale[degree % len(scale)] + 12 * (degree // len(scale))


def _drums(rng: np.random.Generator, score: Score, start: int, energy: int, first: bool,
           fill: bool) -> list[Note]:
    tpb, meter = score.ticks_per_beat, score.meter
    notes = [Note(start, "kick", velocity=1.0 if energy else 0.7)]
    if energy >= 1:
        notes += [Note(start + b * tpb, "kick", velocity=0.9) for b in KICK_BEATS[meter][1:]]
        notes += [Note(start + b * tpb, "snare", velocity=0.9) for b in SNARE_BEATS[meter]]
    if energy >= 2:
        if rng.random() < 0.5:  # a syncopated kick on an off-beat
            beat = int(rng.integers(meter))
            notes.append(Note(start + beat * tpb + tpb // 2, "kick", velocity=0.8))
        if first:
            notes.append(Note(start, "crash"))
    taken = {n.tick for n in notes}
    for t in range(score.ticks_per_measure):
        offset = t % tpb
        # The half beat; in a shuffle (three ticks a beat) the swung eighth on the third tick.
        half = offset * 2 == tpb or (tpb == 3 and offset == 2)
        velocity = HATS[energy][0 if offset == 0 else 1 if half else 2]
        if velocity and start + t not in taken:
            notes.append(Note(start + t, "hat", velocity=velocity))
    if fill:  # snares on every tick of the last beat
        last = start + (meter - 1) * tpb
        notes = [n for n in notes if n.tick < last or n.instrument != "hat"]
        notes += [Note(t, "snare", velocity=0.6 + 0.1 * (t - last)) for t in range(last, last + tpb)
                  if not any(n.tick == t and n.instrument == "snare" for n in notes)]
    return notes


def _bass(score: Score, start: int, energy: int, root: int) -> list[Note]:
    tpm, tpb = score.ticks_per_measure, score.ticks_per_beat
    if energy == 0:
        return [Note(start, "bass", tpm, root, 0.8)]
    beats = [*KICK_BEATS[score.meter], score.meter]
    return [Note(start + a * tpb, "bass", (b - a) * tpb, root, 0.8)
            for a, b in itertools.pairwise(beats)]


def _lead(rng: np.random.Generator, score: Score, start: int, energy: int, chord: list[int],
          scale: tuple[int, ...], key: int, pitch: int) -> tuple[list[Note], int]:
    """A phrase for one measure; returns it and the last pitch, so melodies move stepwise."""
    lengths, rest_chance = LEAD_RHYTHM[energy]
    tpb, end = score.ticks_per_beat, start + score.ticks_per_measure
    notes: list[Note] = []
    tick = start
    while tick < end:
        length = max(1, round(float(rng.choice(lengths)) * tpb))
        length = min(length, end - tick)
        if tick == start or rng.random() >= rest_chance:
            if tick % tpb == 0:  # chord tones on beats, scale steps between
                pitch = min((c + 24 + 12 * o for c in chord for o in (0, 1)),
                            key=lambda p: abs(p - pitch))
            else:
                step = int(rng.choice((-2, -1, 1, 2)))
                pitch = key + 24 + _scale_tone(scale, _degree_near(scale, pitch - key - 24) + step)
            pitch = int(np.clip(pitch, key + 19, key + 40))
            velocity = 0.9 if tick % tpb == 0 else 0.75
            # Long notes are let go half a beat early (detached phrasing), so that a slider
            # over one ends with the note and still leaves a gap before the next.
            held = length - tpb // 2 if length >= tpb else length
            notes.append(Note(tick, "lead", held, pitch, velocity))
        tick += length
    return notes, pitch


def _degree_near(scale: tuple[int, ...], semitones: int) -> int:
    """The scale degree closest to `semitones` above the key (degrees continue past an octave)."""
    octave, within = divmod(semitones, 12)
    index = min(range(len(scale)), key=lambda i: abs(scale[i] - within))
    return index + octave * len(scale)
