"""Whole songs and "continue from here": decoding window by window (DESIGN §8).

A window is `window_ms` of audio for the encoder. The decoder's sequence is SOS, the prefix (the
tokens of objects already placed in the `prefix_ms` before the point where generation starts, in
the window's time frame), then the generated tokens; EOS or the window's end stops it. The next
window starts where this one's generation stopped, so each window's prefix is the previous
windows' output (or the mapper's own objects) that falls inside it. Continuation is the same loop
with the mapper's objects before `from_ms` as the first prefix, and those after `until_ms` kept.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from core.accents import accent_times, next_accent
from core.audio import FRAME_MS, LATENCY_FRAMES
from core.beat_grid import grid_classes
from core.beatmap.model import Beatmap, Circle, HitObject, Slider, Spinner
from core.beatmap.slider_simplify import simplify_path
from core.beatmap.slider_trim import extend_to_length, trim_to_length
from core.beatmap.ticks import TickGrid, beat_divisor_of, divisors_for
from core.beatmap.timing import ControlPoints, annotate_sliders, slider_velocity
from core.beatmap.writer import LAZER_VERSION
from core.checkpoint import load_model
from core.constraints import SPINNER_RECOVERY_MS, spinner_recovery_ms
from core.decoding import DecodingOptions, decode_window
from core.model import MapModel
from core.music_presence import (
    audible_frames,
    fill_test,
    music_end_ms,
    music_frames,
    music_goes_on,
    soft_passages,
    soft_test,
    song_levels,
)
from core.music_pull import MusicPull, window_steps
from core.object_fit import end_on_a_tick, ending_by
from core.object_mix import is_long
from core.playfield import keep_arc_inside
from core.rhythm import GAP_LEVELS_MS, MAX_GAP_MS
from core.sequence_state import SequenceState
from core.spacing import end_position, lead_into
from core.spinner_rules import calm_frames, spinner_reach, spinner_test
from core.stacks import run_starts
from core.streams import steps_of
from core.tempo_grid import onset_envelope
from core.tokens.detokenizer import DetokenizeOptions, decode_objects
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.tokenizer import snap_tolerance, tokenize_objects
from core.tokens.vocab import Category, Vocab

Progress = Callable[[float], None]  # fraction done, 0..1
# A window the model ends this long before its end is asked again from its last object: the
# starter, trained on synthetic songs whose only spinner is the outro, took a spinner in a real
# song for its end and left the next 10 s of loud music empty. Shorter ends are a window's usual
# last rest.
HOLE_MS = 2000.0
RETRY_STEP_MS = 1000.0
FILL_BAR = 0.95  # of a bar: the longest gap where the music goes on (see _fill_span)


@dataclass(frozen=True)
class WindowOptions:
    window_ms: float = 16_000.0  # the audio the encoder sees; the training windows' length
    prefix_ms: float = 4_000.0  # how much already-placed map the decoder sees before generating
    hole_ms: float = HOLE_MS  # a window ended this long before its end is asked again (inf: never)
    take_back_spinners: bool = True  # ... and a spinner it ended on in loud music taken back
    fill_ms: float = HOLE_MS  # no gap longer than this where the music goes on (inf: any)


@dataclass(frozen=True)
class Generator:
    """A loaded model with its vocabulary; `generate` is the one entry point for callers."""

    model: MapModel
    vocab: Vocab
    windows: WindowOptions = WindowOptions()

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Generator:
        """The model at `path`, decoding with the window length it was trained on."""
        model, vocab, meta = load_model(path)
        window_ms = float(meta.get("window", {}).get("window_s", 16.0)) * 1000
        return cls(model, vocab, WindowOptions(window_ms=window_ms,
                                               prefix_ms=min(4000.0, window_ms / 4)))

    @torch.inference_mode()  # no autograd records: the encoder ran with them before
    def generate(self, mel: Tensor, template: Beatmap, difficulty: Sequence[float],
                 start_ms: float, end_ms: float, before: Sequence[HitObject] = (),
                 options: DecodingOptions | None = None,
                 progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 after: HitObject | None = None) -> list[HitObject]:
        """New objects in [start_ms, end_ms) for the song whose features are `mel` (n_mels, F),
        none before the template's first uninherited timing point nor after the music ends
        (core.music_presence.music_end_ms: none at all in a song with no music).

        `before`: objects already placed before `start_ms` (the mapper's, for continuation);
        `after`: the first object kept after `end_ms`, which the new ones lead into (within
        the spacing ceiling of it for the time left: core.spacing_limit's join);
        `template` supplies timing (for snapping), difficulty settings (slider velocity) and
        the editor's beat snap divisor: new objects go only on the ticks it offers (1/4: 1/1,
        1/2 and 1/4 ticks), as the mapper's own would.
        """
        options = options or DecodingOptions()
        self.model.eval()
        rng = torch.Generator().manual_seed(options.seed)
        cond = torch.tensor([list(difficulty)], dtype=torch.float32)  # (1, 5)
        placed = list(before)
        new: list[HitObject] = []
        ticks = TickGrid(template.timing_points)
        allowed = TickGrid(template.timing_points,
                           divisors_for(beat_divisor_of(template.editor)))
        heard = audible_frames(mel)
        audible: Tensor | None = heard
        if bool(heard.all()):  # no silence in the song: no frame to refuse
            audible = None
        tolerance = snap_tolerance(self.vocab) if ticks else 0.0
        window, prefix_span = self.windows.window_ms, self.windows.prefix_ms
        # Nothing before the first red line: mappers put it on or before the first note (the
        # intro before it is silence or count-in, where the starter wrote streams), and an
        # estimated one is moved back a bar for pickup notes (core.tempo).
        position = max(start_ms, ticks.times[0] - tolerance) if ticks else start_ms
        first = position  # where this generation starts: a gap before it is not its own
        levels, typical = song_levels(mel)
        envelope = onset_envelope(mel.numpy())
        music = music_frames(levels, typical, envelope, heard)  # where it goes on: mapped
        pull = MusicPull(mel, ticks, options.music_pull, tolerance, options.quiet_nats,
                         envelope) \
            if ticks and options.music_pull else None
        pull_steps = window_steps(window, self.vocab.config.time_step_ms)
        # no object starts after the music (a last chord's reverb tail); one may run into it
        starts_by = min(end_ms, music_end_ms(mel, envelope) + tolerance)
        accents = accent_times(pull, starts_by) \
            if pull is not None and options.accent_margin_beats is not None else None
        fill_span = functools.partial(_fill_span, self.windows.fill_ms,
                                      ControlPoints(ticks.points) if ticks else None)
        taken_back: Spinner | None = None  # the spinner this window is asked again without
        spared: list[Spinner] = []  # spinners put back: never taken back again
        done = 0.0
        calm = calm_frames(mel, envelope)
        soft = soft_passages(levels, typical, audible) \
            if options.soft_bias or options.soft_spacing not in (None, 1.0) else None
        while position < starts_by - tolerance:
            origin = max(0.0, _grid(position - prefix_span, self.vocab))
            stop = min(origin + window, starts_by)
            prefix = [o for o in placed if origin <= o.time < position]
            ids = [self.vocab.id(Category.SOS)]
            ids += tokenize_objects(prefix, self.vocab, template, origin_ms=origin,
                                    ticks=ticks or None)
            state = SequenceState(GrammarWalker(Grammar(self.vocab.config)), self.vocab,
                                  min_start=position - origin + tolerance,
                                  generation_start=first - origin + tolerance,
                                  window_end=stop - origin - tolerance,
                                  on_tick=_tick_test(allowed, origin, tolerance, audible),
                                  end_on_tick=_tick_test(allowed, origin, tolerance),
                                  slider_speed=_slider_speed(template, origin),
                                  beat_ms=_beat_ms(template, origin),
                                  spinners_from=(taken_back.end_time - origin if taken_back
                                                 else -math.inf),
                                  spinner_ok=spinner_test(calm, origin),
                                  spinner_until=spinner_reach(calm, origin),
                                  segments_allowed=template.format_version >= LAZER_VERSION)
            if after is not None and not isinstance(after, Spinner):  # a spinner: anywhere
                state.join = (after.time - origin, float(after.x), float(after.y))
            if pull is not None:
                state.pull = pull.window(origin, pull_steps, self.vocab.config.time_step_ms)
                if options.accent_margin_beats is not None:
                    state.next_accent = next_accent(accents, origin)
            if soft is not None:
                state.soft = soft_test(soft, origin)
            if math.isfinite(self.windows.fill_ms):
                state.fill = fill_test(music, origin, fill_span)
            for token in ids:
                state.step(token)
            _follow_earlier(state, placed, origin, position, template.format_version)
            frames = _frames(mel, origin, window)
            grid = None
            if self.model.dims.beat_grid:  # older checkpoints do not read it
                grid = torch.from_numpy(grid_classes(template.timing_points, origin,
                                                     -(-frames.shape[-1] // 2)))[None]
            audio = self.model.encoder(frames[None], grid)  # (1, S, D)
            result = decode_window(self.model, self.vocab, audio, cond, ids, state, options,
                                   rng, should_stop)
            decoded = decode_objects(ids + result.tokens, template, self.vocab,
                                     DetokenizeOptions(origin_ms=origin, snap=bool(ticks)))
            fresh = [fitted for o in decoded[len(prefix):] if start_ms <= o.time < end_ms
                     and (fitted := ending_by(o, end_ms)) is not None]
            for i, obj in enumerate(fresh):
                if ticks:
                    end_on_a_tick(obj, allowed, fresh[i + 1].time if i + 1 < len(fresh)
                                  else end_ms + 1.0,  # not past the end either
                                  spinner_recovery_ms(options, state, obj.end_time - origin)
                                  if isinstance(obj, Spinner) else SPINNER_RECOVERY_MS)
                if isinstance(obj, Slider):
                    keep_arc_inside(obj, template.format_version)
                    trim_to_length(obj, template.format_version)
                    extend_to_length(obj, template.format_version)
                    simplify_path(obj, template.format_version)
            if taken_back is not None and not fresh:
                # asked again without it, the model placed nothing: the spinner beats a hole
                fresh = [taken_back]
                spared.append(taken_back)
            taken_back = None
            placed += fresh
            new += fresh
            last = max((o.end_time for o in fresh), default=position)
            ended_early = result.finished and stop - last > self.windows.hole_ms
            if ended_early and self._took_for_the_end(new, spared, music):
                # the model took a spinner for the song's end (this window's last object or,
                # ending at once, the last window's): ask again from its start (its tick
                # included), with no spinner until its end
                taken_back = new.pop()
                popped = placed.pop()  # the same object: `placed` ends with `new`
                assert popped is taken_back
                position = max(start_ms, taken_back.time - tolerance)
                continue
            if ended_early:
                # the model ended the window early, seconds before its end: ask again just after
                # its last object (in the next prefix), or, where it placed none, once its prefix
                # has passed; and at least RETRY_STEP_MS on, so that a model ending after every
                # object costs a window a second, not one an object
                resume = last + max(tolerance, 1.0) if fresh else position + prefix_span
                position = min(stop, max(resume, position + RETRY_STEP_MS))
            else:
                position = stop
            # never inside the last object: a spinner or slider may run past the window's end
            position = max(position, max((o.end_time + 1.0 for o in placed), default=position))
            if progress is not None:  # never back: a spinner taken back moved the position back
                done = max(done, min(1.0, (position - start_ms) / max(starts_by - start_ms, 1.0)))
                progress(done)
        if progress is not None and done < 1.0:  # the music ended before the span did
            progress(1.0)
        return new

    def _took_for_the_end(self, new: list[HitObject], spared: list[Spinner],
                          music: Tensor) -> bool:
        """Whether the last generated object is a spinner (not one put back) that the music
        goes on after, for the `hole_ms` after its end: one the model took for the song's end."""
        spinner = new[-1] if new else None
        return (self.windows.take_back_spinners and isinstance(spinner, Spinner)
                and not any(spinner is s for s in spared)
                and music_goes_on(music, spinner.end_time,
                                  spinner.end_time + self.windows.hole_ms))


def _fill_span(fill_ms: float, timing: ControlPoints | None, at_ms: float) -> float:
    """The longest gap left after `at_ms` where the music goes on: `fill_ms`, and, where the
    map is timed (`timing`: its red lines), under a bar there (a whole empty bar of loud music
    had been left 16 times in four whole maps at 2-6 stars; QA, session 25)."""
    if timing is None:
        return fill_ms
    point = timing.timing_point_at(at_ms + 1.0)
    return min(fill_ms, FILL_BAR * max(1, point.meter) * point.beat_length)


def continue_map(generator: Generator, beatmap: Beatmap, mel: Tensor, from_ms: float,
                 until_ms: float | None, difficulty: Sequence[float],
                 options: DecodingOptions | None = None, song_ms: float | None = None,
                 progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Beatmap:
    """The map with new objects from `from_ms` (to `until_ms`, or the song's end); every object
    before `from_ms`, and after `until_ms`, is kept exactly as it was."""
    before = [o for o in beatmap.hit_objects if o.time < from_ms]
    after = [o for o in beatmap.hit_objects if until_ms is not None and o.time >= until_ms]
    end = song_ms if song_ms is not None else mel.shape[-1] * FRAME_MS
    if until_ms is not None:
        end = min(end, until_ms)
    if after:
        end = min(end, after[0].time - generator.vocab.config.time_step_ms)
    if before:  # the new objects start after the last kept one ends
        from_ms = max(from_ms, max(o.end_time for o in before) + 1)
    new = generator.generate(mel, beatmap, difficulty, from_ms, end, before, options, progress,
                             should_stop, after=after[0] if after else None)
    result = copy.deepcopy(beatmap)
    result.hit_objects = [*copy.deepcopy(before), *new, *copy.deepcopy(after)]
    annotate_sliders(result)
    previous = new[-2] if len(new) > 1 else (before[-1] if before else None)
    if after and not isinstance(after[0], Spinner) and new and isinstance(new[-1], Circle) \
            and previous is not None and options is not None and options.spacing:
        lead_into(previous, new[-1], after[0], options.spacing, beatmap.format_version,
                  options.min_distance)
    return result


def _tick_test(ticks: TickGrid, origin: float, tolerance: float, audible: Tensor | None = None
               ) -> Callable[[float], bool] | None:
    """Whether an object may start at a window-relative time: on a tick, and (given `audible`,
    per feature frame) not in silence. Without timing only the silence test, and None (anything
    goes) without `audible` either."""
    if not ticks and audible is None:
        return None
    memo: dict[float, bool] = {}

    def on_tick(t: float) -> bool:
        if t not in memo:
            ok = not ticks or ticks.snap(origin + t, tolerance) is not None
            if ok and audible is not None:
                frame = int((origin + t) // FRAME_MS) + LATENCY_FRAMES
                ok = 0 <= frame < audible.shape[0] and bool(audible[frame])
            memo[t] = ok
        return memo[t]

    return on_tick


def _slider_speed(template: Beatmap, origin: float) -> Callable[[float], float]:
    """osu!pixels per ms of a slider starting at a window-relative time (the map's timing)."""
    points = ControlPoints(template.timing_points)

    def speed(t: float) -> float:
        return slider_velocity(Slider(x=0, y=0, time=origin + t), template.difficulty, points)

    return speed


def _beat_ms(template: Beatmap, origin: float) -> Callable[[float], float]:
    """ms per beat at a window-relative time (the map's timing)."""
    points = ControlPoints(template.timing_points)
    return lambda t: points.beat_length_at(origin + t)


def _grid(ms: float, vocab: Vocab) -> float:
    """Window origins on the time grid (and on a feature frame), so tokens line up exactly."""
    step = math.lcm(int(vocab.config.time_step_ms), FRAME_MS)
    return math.floor(ms / step) * step


def _frames(mel: Tensor, origin_ms: float, window_ms: float) -> Tensor:
    """(n_mels, frames) of the window that starts at beatmap time `origin_ms` (the audio's
    LATENCY_MS later), silence (-1) past the song's end."""
    start = int(origin_ms // FRAME_MS) + LATENCY_FRAMES
    count = round(window_ms / FRAME_MS)
    out = torch.full((mel.shape[0], count), -1.0, dtype=mel.dtype)
    piece = mel[:, start: start + count]
    out[:, : piece.shape[1]] = piece
    return out


def _follow_earlier(state: SequenceState, placed: list[HitObject], origin: float,
                    position: float, format_version: int) -> None:
    """What a window's state needs of the objects placed before it (the prefix from `origin`
    to `position`, stepped already, and those before it): the whole map's gaps (the rhythm
    caps), runs of 1/4 notes that stack and streams' steps that turn back, counted over both
    at once (a stream in the prefix alone had held the next objects back a second; counted
    apart, the gap into the prefix is lost and a run across its start counts twice); the
    share of sliders, of sliders going
    back and of long ones before the prefix (the whole map's, not the prefix's few seconds);
    and the one that runs into the prefix, a long spinner or slider, as the last object the
    next one follows (its end and position, and after a spinner the recovery; an object had
    come 97 ms after a 3-second spinner that began before the next window)."""
    so_far = [o for o in placed if o.time < position]
    gaps = [b - a for a, b in itertools.pairwise(sorted(o.time for o in so_far))
            if b - a <= MAX_GAP_MS]  # as SequenceState.step counts them
    state.gaps = len(gaps)
    state.short_gaps = tuple(sum(gap < level for gap in gaps) for level in GAP_LEVELS_MS)
    runs = run_starts([o for o in so_far if not isinstance(o, Spinner)])
    state.run_starts, state.stacked_starts = len(runs), sum(runs)
    _, turns, _ = steps_of(so_far)  # ... and streams' turns
    state.turnable, state.stream_turns = len(turns), sum(turns)
    earlier = [o for o in placed if o.time < origin and not isinstance(o, Spinner)]
    state.sliders += sum(isinstance(o, Slider) for o in earlier)
    if state.beat_ms is not None:  # ... and of long ones
        state.longs += sum(is_long(o.duration / o.slides, state.beat_ms(o.time - origin))
                           for o in earlier if isinstance(o, Slider) and o.duration)
    state.reverses += sum(isinstance(o, Slider) and o.slides > 1 for o in earlier)
    state.circles += sum(not isinstance(o, Slider) for o in earlier)
    running = [o for o in placed if o.time < origin <= o.end_time]
    last = max(running, key=lambda o: o.end_time, default=None)
    if last is not None and last.end_time - origin > state.last_end:
        state.last_end = last.end_time - origin
        state.after_spinner = isinstance(last, Spinner)
        state.last_position = end_position(last, format_version)
        state.last_head = (float(last.x), float(last.y))
