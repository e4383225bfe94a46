"""Human maps for the starter: the corpus's osu!standard maps as a Songs folder, and a score.

`--link OUT` writes OUT/train and OUT/heldout, one folder per map holding a symlink to the
corpus's .osu (nothing is copied), for `kiai build-starter --maps OUT/train`: the maps have no
audio in the corpus, so they train on silence and teach placement, not rhythm (DESIGN §7).
HELD_OUT, five maps of 124-1,044 objects and format v6-v14, stay out of training.

`--evaluate MODEL [MODEL ...]` scores models on the held-out maps side by side: mean
cross-entropy (nats per token, lower is better) of the map's own next token after a random
prefix, over every 10 s window (three cuts), split by what the token decides: coordinates,
time shifts, and types (circle, slider, anchor, spinner, new combo, end).

    .venv/bin/python benchmarks/real_maps.py --link build/realmaps
    .venv/bin/python benchmarks/real_maps.py --evaluate core/starter_model run/best
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from corpus import corpus_root

from core.beatmap.model import Mode
from core.beatmap.parser import BeatmapError, parse_bytes
from core.checkpoint import load_model
from core.dataset import BuildConfig, build
from core.dataset_loader import WindowConfig, WindowDataset, collate
from core.songs import discover
from core.tokens.vocab import Category, preset

HELD_OUT = {"Soleily - Renatus (Gamu) [Insane].osu", "1124896.osu", "42587.osu", "871815.osu",
            "diffcalc-test.osu"}
MIN_OBJECTS = 10
KINDS = {"coords": {Category.COORD_X, Category.COORD_Y}, "time": {Category.TIME_SHIFT}}


def link(out: Path) -> dict[str, int]:
    """OUT/train and OUT/heldout from the corpus tree's osu!standard maps (MIN_OBJECTS+)."""
    counts = {"train": 0, "heldout": 0}
    for path in sorted((corpus_root() / "ppy-osu" / "tree").rglob("*.osu")):
        try:
            beatmap = parse_bytes(path.read_bytes(), path.name).beatmap
        except BeatmapError:
            continue
        if beatmap.mode is not Mode.OSU or len(beatmap.hit_objects) < MIN_OBJECTS:
            continue
        part = "heldout" if path.name in HELD_OUT else "train"
        folder = out / part / f"{counts[part]:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if not target.exists():
            target.symlink_to(path.resolve())
        counts[part] += 1
    return counts


def kind_of(category: Category) -> str:
    return next((k for k, cats in KINDS.items() if category in cats), "types")


@torch.inference_mode()
def evaluate(model_path: Path, data: Path) -> dict[str, float]:
    model, vocab, _ = load_model(model_path)
    names = [*KINDS, "types"]
    kind = torch.tensor([names.index(kind_of(vocab.category(i))) for i in range(len(vocab))])
    sums, counts = torch.zeros(len(names)), torch.zeros(len(names))
    for seed in range(3):
        windows = WindowDataset(data, WindowConfig(window_s=10.0, seed=seed), vocab.config)
        for start in range(0, len(windows), 8):
            batch = collate([windows[i] for i in range(start, min(start + 8, len(windows)))])
            tokens = batch["tokens"][:, :model.dims.max_tokens + 1]
            mask = batch["loss_mask"][:, 1:model.dims.max_tokens + 1]
            times = batch.get("times")
            times = None if times is None else times[:, :tokens.shape[1] - 1]
            logits = model(batch["audio"], tokens[:, :-1], batch["difficulty"], times,
                           batch.get("grid"))
            loss = F.cross_entropy(logits.float().transpose(1, 2), tokens[:, 1:],
                                   reduction="none")
            which = kind[tokens[:, 1:]]
            for k in range(len(names)):
                chosen = mask & (which == k)
                sums[k] += loss[chosen].sum()
                counts[k] += chosen.sum()
    scores = {name: float(sums[k] / counts[k]) for k, name in enumerate(names)}
    scores["all"] = float(sums.sum() / counts.sum())
    scores["tokens"] = int(counts.sum())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--link", type=Path, metavar="OUT")
    parser.add_argument("--evaluate", type=Path, nargs="+", metavar="MODEL")
    args = parser.parse_args()
    if args.link:
        counts = link(args.link)
        print(f"{args.link}: {counts['train']} maps to train on, {counts['heldout']} held out")
    if args.evaluate:
        with tempfile.TemporaryDirectory() as tmp:
            maps = link(Path(tmp) / "maps")
            data = Path(tmp) / "data"
            build(discover(Path(tmp) / "maps" / "heldout", audioless=True)[0],
                  BuildConfig(out=data, vocab=preset("default"), workers=1))
            print(f"{maps['heldout']} held-out maps, nats per token (lower is better)")
            print(f"{'model':<32}{'coords':>8}{'time':>8}{'types':>8}{'all':>8}{'tokens':>8}")
            for path in args.evaluate:
                s = evaluate(path, data)
                print(f"{str(path)[-32:]:<32}{s['coords']:>8.3f}{s['time']:>8.3f}"
                      f"{s['types']:>8.3f}{s['all']:>8.3f}{s['tokens']:>8}")


if __name__ == "__main__":
    main()
