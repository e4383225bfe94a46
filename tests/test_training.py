"""Training: the loss falls, masked positions take no part, checkpoints round-trip without
pickle and survive a failed save, a resumed run ends where an uninterrupted one does, two DDP
processes stay in sync, and `kiai train` runs. A tiny model on 4 s windows of two synthetic
songs keeps it fast."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from test_songs import synth_songs
from training_support import TINY, WINDOW_S, batch_of, tiny_config, tiny_model

import core.checkpoint
import core.optimizer
import core.training
from companion.cli import main
from core.checkpoint import (
    ASIDE_PREFIX,
    META_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    TMP_PREFIX,
    load_model,
    load_optimizer,
    read_meta,
    save_checkpoint,
    save_model_only,
)
from core.dataset_loader import WindowConfig, WindowDataset
from core.model import ModelDims
from core.objective import batch_loss, next_token_loss, token_weights
from core.tokens.vocab import DEFAULT, Category, Vocab
from core.training import (
    LAST,
    make_optimizer,
    train,
)
from core.training_data import split_by_set

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_loss_decreases(training_set, tmp_path, precision):
    losses = []
    config = tiny_config(training_set, tmp_path / "run", max_steps=30, eval_interval=30,
                         precision=precision)
    result = train(config, dims=TINY, on_step=lambda m: losses.append(m["loss"]))
    assert len(losses) == 30 == result.step
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, losses
    assert result.best_val_loss is not None and result.best_val_loss < first
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [m["step"] for m in lines if "loss" in m] == list(range(1, 31))
    assert any("val_loss" in m for m in lines)


class _SteppedClock:
    """time.perf_counter for core.optimizer that moves one second a call: a budgeted run's
    length in steps is then the same on any machine."""

    now = 0.0

    @classmethod
    def perf_counter(cls) -> float:
        cls.now += 1.0
        return cls.now


def test_budget_ends_the_run_on_time_and_resumes_what_is_left(training_set, tmp_path, monkeypatch):
    monkeypatch.setattr(core.optimizer, "time", _SteppedClock)
    budget = {"budget_s": 40.0, "max_steps": 1000, "eval_interval": 1000,
              "checkpoint_interval": 1000}
    rates = []
    straight = train(tiny_config(training_set, tmp_path / "straight", **budget), dims=TINY,
                     on_step=lambda m: rates.append(m["lr"]))
    assert 3 < straight.step < 1000 and not straight.stopped
    assert rates[3:] == sorted(rates[3:], reverse=True) and rates[-1] < 1.5e-3  # near 3e-4
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").open()]
    assert records[-1] == {"step": straight.step, "val_loss": straight.metrics["val_loss"]}
    assert [r["budget_left_s"] for r in records if "loss" in r][-1] == 0.0
    meta = load_model(tmp_path / "straight" / LAST)[2]
    assert meta["step"] == straight.step and meta["elapsed_s"] >= 40.0
    # Stopped after two steps and resumed, the run spends only what its budget has left.
    first = train(tiny_config(training_set, tmp_path / "resumed", **budget), dims=TINY,
                  should_stop=lambda step: step == 2)
    assert first.stopped and first.step == 2
    second = train(tiny_config(training_set, tmp_path / "resumed", **budget),
                   resume=tmp_path / "resumed" / LAST)
    assert abs(second.step - straight.step) <= 1 and not second.stopped
    # Resumed once more, with its budget gone, it takes no step and writes nothing.
    written = (tmp_path / "resumed" / "metrics.jsonl").read_text()
    third = train(tiny_config(training_set, tmp_path / "resumed", **budget),
                  resume=tmp_path / "resumed" / LAST)
    assert third.step == second.step
    assert (tmp_path / "resumed" / "metrics.jsonl").read_text() == written


def test_masked_positions_take_no_part(training_set):
    # The loss itself: targets under mask=False never matter.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 20, 50, generator=g)
    targets = torch.randint(0, 50, (3, 20), generator=g)
    mask = torch.rand(3, 20, generator=g) < 0.5
    changed = torch.where(mask, targets, (targets + 7) % 50)
    assert torch.equal(next_token_loss(logits, targets, mask)[0],
                       next_token_loss(logits, changed, mask)[0])
    # Through the model: the batch has PAD and prefixes; PAD tokens (after every real token, so
    # causally unseen by real positions) can be anything.
    batch = batch_of(training_set)
    assert (~batch["token_mask"]).any() and (batch["prefix_length"] > 1).any()
    assert not (batch["loss_mask"] & ~batch["token_mask"]).any()
    assert not batch["loss_mask"][:, 0].any()  # SOS is never a target
    model = tiny_model().eval()
    with torch.no_grad():
        before = batch_loss(model, batch, TINY)
        noisy = dict(batch, tokens=torch.where(batch["token_mask"], batch["tokens"], 5))
        after = batch_loss(model, noisy, TINY)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert before[1] == batch["loss_mask"][:, 1:].sum()


def test_coordinate_weight_scales_only_coordinate_targets():
    vocab = Vocab(DEFAULT)
    assert token_weights(vocab, 1.0) is None  # the plain cross-entropy
    weights = token_weights(vocab, 0.25)
    x, y, shift = (vocab.spans[c] for c in (Category.COORD_X, Category.COORD_Y,
                                            Category.TIME_SHIFT))
    assert weights[x.start] == weights[y.stop - 1] == 0.25 and weights[shift.start] == 1.0
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 30, len(vocab), generator=g)
    targets = torch.randint(0, len(vocab), (2, 30), generator=g)
    targets[0, :10] = x.start + 3  # some coordinate targets among the rest
    mask = torch.ones(2, 30, dtype=torch.bool)
    plain, n = next_token_loss(logits, targets, mask)
    weighed, w = next_token_loss(logits, targets, mask, weights)
    per_token = torch.nn.functional.cross_entropy(logits.view(-1, len(vocab)), targets.view(-1),
                                                  reduction="none").view(2, 30)
    is_coord = (targets >= x.start) & (targets < y.stop)
    assert n == 60 and w == pytest.approx(60 - 0.75 * int(is_coord.sum()))
    assert weighed == pytest.approx(float(per_token[~is_coord].sum()
                                          + 0.25 * per_token[is_coord].sum()), rel=1e-5)
    assert weighed < plain


def test_split_holds_out_whole_song_sets(training_set):
    data = WindowDataset(training_set, WindowConfig(window_s=WINDOW_S))
    split = split_by_set(data, val_fraction=0.1)
    assert len(split.val_sets) == 1 and split.train and split.val
    shard_of = {i: data.maps[data.window(i)[0]].shard.name for i in range(len(data))}
    assert {shard_of[i] for i in split.val} == set(split.val_sets)
    assert not {shard_of[i] for i in split.train} & set(split.val_sets)
    assert sorted(split.train + split.val) == list(range(len(data)))


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    optimizer = make_optimizer(model, tiny_config(tmp_path, tmp_path), torch.device("cpu"))
    mel, ids, difficulty = torch.randn(2, 80, 400), torch.randint(3, 700, (2, 30)), \
        torch.rand(2, 5) * 10
    model(mel, ids, difficulty).square().mean().backward()
    optimizer.step()
    model.eval()
    path = save_checkpoint(tmp_path / "ckpt", model, DEFAULT, {"step": 1, "metrics": {}},
                           optimizer)
    assert sorted(p.name for p in path.iterdir()) == [META_FILE, MODEL_FILE, OPTIMIZER_FILE]
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    assert ModelDims(**meta["model"]) == TINY and meta["vocab"]["name"] == "default"
    for file in path.iterdir():  # safetensors: an 8-byte header length, then a JSON header
        head = file.read_bytes()[:9]
        assert not head.startswith(b"\x80"), f"{file.name} looks like a pickle"
        assert head[8:9] == b"{" if file.suffix == ".safetensors" else head[:1] == b"{"
    loaded, vocab, meta = load_model(path)
    assert vocab.config == DEFAULT and meta["step"] == 1 and not loaded.training
    with torch.no_grad():
        assert torch.equal(model(mel, ids, difficulty), loaded(mel, ids, difficulty))
    # The optimizer's state comes back exactly, into a fresh optimizer over the loaded model.
    fresh = make_optimizer(loaded, tiny_config(tmp_path, tmp_path), torch.device("cpu"))
    load_optimizer(path, loaded, fresh)
    names = dict(zip(optimizer.state_dict()["state"], [n for n, _ in model.named_parameters()]))
    for key, state in optimizer.state_dict()["state"].items():
        for field, value in state.items():
            assert torch.equal(fresh.state_dict()["state"][key][field], value), names[key]
    # float16 for shipping: half the size, close logits, float32 once loaded.
    small = save_model_only(model, DEFAULT, tmp_path / "ship")
    assert (small / MODEL_FILE).stat().st_size <= (path / MODEL_FILE).stat().st_size / 2 + 4096
    half, _, _ = load_model(small)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    with torch.no_grad():
        full, approx = model(mel, ids, difficulty), half(mel, ids, difficulty)
    assert (full - approx).abs().max() < 0.05 * full.abs().max()


def test_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last"
    save_checkpoint(path, tiny_model(0), DEFAULT, {"step": 1})
    real_save = core.checkpoint.save_file

    def broken(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata)  # half-written: the weights land, then ...
        raise OSError("disk full")

    monkeypatch.setattr(core.checkpoint, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_model(1), DEFAULT, {"step": 2})
    monkeypatch.undo()
    _, _, meta = load_model(path)
    assert meta["step"] == 1
    assert torch.equal(load_model(path)[0].decoder.head.weight, tiny_model(0).decoder.head.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no temporaries left
    # A crash between the swap's two renames leaves only the moved-aside copy: still loadable,
    # and the next save puts a whole checkpoint back in place.
    path.rename(tmp_path / f"{ASIDE_PREFIX}last")
    assert load_model(path)[2]["step"] == 1
    save_checkpoint(path, tiny_model(2), DEFAULT, {"step": 3})
    assert load_model(path)[2]["step"] == 3
    assert not any(p.name.startswith((ASIDE_PREFIX, TMP_PREFIX)) for p in tmp_path.iterdir())


def test_resume_matches_an_uninterrupted_run(training_set, tmp_path):
    # 8 steps of 4 windows over 25 training windows: the break falls mid-epoch and the run
    # crosses into the second epoch after it.
    straight = train(tiny_config(training_set, tmp_path / "straight"), dims=TINY)
    first = train(tiny_config(training_set, tmp_path / "resumed"), dims=TINY,
                  should_stop=lambda step: step == 5)
    assert first.stopped and first.step == 5
    with (tmp_path / "resumed" / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 6, "loss": 1.0}\n{"step": 7, "lo')  # killed after step 5's save
    second = train(tiny_config(training_set, tmp_path / "resumed"),
                   resume=tmp_path / "resumed" / LAST)
    assert straight.step == second.step == 8 and not second.stopped
    for (name, a), b in zip(straight.model.state_dict().items(),
                            second.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert straight.best_val_loss == pytest.approx(second.best_val_loss)
    records = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))


def test_init_starts_from_a_checkpoints_weights(training_set, tmp_path):
    base = train(tiny_config(training_set, tmp_path / "base"), dims=TINY)
    slow = {"max_steps": 2, "lr": 1e-7, "warmup_steps": 1}  # too little to move the weights
    tuned = train(tiny_config(training_set, tmp_path / "tuned", init=tmp_path / "base" / LAST,
                              **slow))
    assert tuned.step == 2  # a fresh count, not the base run's 8
    for (name, a), b in zip(base.model.state_dict().items(), tuned.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4, msg=name)
    fresh = train(tiny_config(training_set, tmp_path / "fresh", **slow), dims=TINY)
    assert not torch.allclose(base.model.decoder.head.weight, fresh.model.decoder.head.weight,
                              atol=1e-2)
    assert read_meta(tmp_path / "tuned" / LAST)["train"]["init"] == str(tmp_path / "base" / LAST)
    # a new run into a run's folder would replace its model (QA: "add songs, train again"):
    # refused before anything is written; resuming it there is the way
    before = {p: p.read_bytes() for p in (tmp_path / "base").rglob("*") if p.is_file()}
    for again in ({}, {"init": tmp_path / "tuned" / LAST}):
        with pytest.raises(ValueError, match=r"already holds a trained model \(last/ at step 8\)"):
            train(tiny_config(training_set, tmp_path / "base", **slow, **again), dims=TINY)
    with pytest.raises(ValueError, match="already holds"):  # nor another run's resume
        train(tiny_config(training_set, tmp_path / "base", **slow),
              resume=tmp_path / "tuned" / LAST)
    assert {p: p.read_bytes() for p in (tmp_path / "base").rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match="vocabulary"):
        train(tiny_config(training_set, tmp_path / "other", init=tmp_path / "base" / LAST,
                          vocab="seed", **slow))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, training_set: Path, out: Path, results: Path,
                budget_s: float | None = None) -> None:
    """One of two gloo processes, started as torchrun would start it."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    saves = []
    real_save = core.training.save_checkpoint
    core.training.save_checkpoint = lambda *a, **k: saves.append(rank) or real_save(*a, **k)
    steps = {"max_steps": 4} if budget_s is None else {"max_steps": 1000, "budget_s": budget_s}
    result = train(tiny_config(training_set, out, eval_interval=2, **steps), dims=TINY)
    save_file(result.model.state_dict(), str(results / f"rank{rank}.safetensors"))
    (results / f"saves{rank}.json").write_text(json.dumps(saves))


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="this torch build has no gloo backend for CPU multi-process training")
def test_ddp_processes_stay_in_sync(training_set, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    mp.spawn(_ddp_worker, args=(_free_port(), training_set, tmp_path / "run", results), nprocs=2)
    rank0, rank1 = (load_file(str(results / f"rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    initial = tiny_model(0).state_dict()  # the seed's initialisation, then trained away from it
    assert not torch.equal(rank0["decoder.head.weight"], initial["decoder.head.weight"])
    assert json.loads((results / "saves1.json").read_text()) == []
    assert json.loads((results / "saves0.json").read_text())
    assert load_model(tmp_path / "run" / LAST)[2]["step"] == 4
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert steps == [1, 2, 2, 3, 4, 4]  # rank 0 alone: each step once, evaluations after 2, 4


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="this torch build has no gloo backend for CPU multi-process training")
def test_ddp_processes_share_one_budget_clock(training_set, tmp_path):
    """Each process's own clock would set its own learning rate and stop at its own step (and
    the other would wait for it forever); rank 0's, broadcast, keeps them together."""
    results = tmp_path / "results"
    results.mkdir()
    mp.spawn(_ddp_worker, args=(_free_port(), training_set, tmp_path / "run", results, 4.0),
             nprocs=2)
    rank0, rank1 = (load_file(str(results / f"rank{r}.safetensors")) for r in (0, 1))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, len(steps) + 1)) and load_model(tmp_path / "run" / LAST)[2][
        "step"] == steps[-1] < 1000


def test_cli_train(training_set, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(training_set), "--out", str(run),
                                       "--steps", "3", "--model", "small", "--batch-size", "2",
                                       "--window", str(WINDOW_S), "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert load_model(run / LAST)[2]["step"] == 3
    assert (run / "best" / MODEL_FILE).is_file()


def test_cli_train_on_songs_reports_skips_and_keeps_a_trained_run(tmp_path):
    """`train --songs` says what it skipped, as `dataset build` does, and a second run into
    the same folder is refused before anything is built or written (QA round 9: it printed
    no skip and replaced the trained model)."""
    songs = tmp_path / "Songs"
    synth_songs(songs, 1, seed=5, duration_s=20.0)
    bad = songs / "1 Missing - Audio"
    bad.mkdir()
    (bad / "a.osu").write_text("osu file format v14\n[General]\nAudioFilename: gone.mp3\n"
                               "Mode: 0\n[HitObjects]\n1,1,100,1,0\n")
    run = tmp_path / "run"
    args = ["train", "--songs", str(songs), "--out", str(run), "--steps", "1",
            "--batch-size", "2", "--window", str(WINDOW_S), "--workers", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{run / 'dataset'}: 5 maps from 1 song sets" in result.output
    assert "missing audio" in result.output and str(bad / "a.osu") in result.output
    assert "missing audio\t" + str(bad / "a.osu") in (run / "dataset" / "skipped.tsv").read_text()
    trained = (run / LAST / MODEL_FILE).read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already holds a trained model (last/ at step 1)" in \
        again.output and "--resume" in again.output
    assert f"--data {run / 'dataset'}" in again.output  # the data set built, not built again
    assert "building" not in again.output and (run / LAST / MODEL_FILE).read_bytes() == trained


def test_cli_train_for_minutes(training_set, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(training_set), "--out", str(run),
                                       "--minutes", "0.02", "--model", "small",
                                       "--batch-size", "2", "--window", str(WINDOW_S),
                                       "--workers", "0"])
    assert result.exit_code == 0, result.output
    meta = load_model(run / LAST)[2]
    assert meta["train"]["budget_s"] == pytest.approx(1.2) and meta["elapsed_s"] >= 1.2
    assert 1 <= meta["step"] < 1000  # the clock ended it, not a step count
    # Resumed without --minutes, the run keeps its own budget: spent, so no step more.
    again = CliRunner().invoke(main, ["train", "--resume", str(run / LAST), "--out", str(run),
                                      "--workers", "0"])
    assert again.exit_code == 0, again.output
    assert load_model(run / LAST)[2]["step"] == meta["step"]


def test_cli_train_errors(training_set, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["train", "--data", str(tmp_path / "nowhere"),
                                   "--out", str(tmp_path / "run")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    not_data = runner.invoke(main, ["train", "--data", str(tmp_path), "--out",
                                    str(tmp_path / "run")])
    assert not_data.exit_code == 1 and "not a data set" in not_data.output
    no_data = runner.invoke(main, ["train", "--out", str(tmp_path / "run")])
    assert no_data.exit_code == 1 and "--data" in no_data.output
    for result in (missing, not_data, no_data):
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)  # click's exit, nothing unhandled
