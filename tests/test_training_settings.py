"""A training run's arithmetic and dropout: bfloat16 autocast where the CPU runs it fast (or
when asked) and float32 elsewhere, and a run's own residual dropout, recorded in what it saves."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from training_support import TINY, WINDOW_S, batch_of, tiny_config, tiny_model

import core.objective
from companion.cli import main
from core.checkpoint import load_model, read_meta
from core.objective import autocast_dtype, batch_loss
from core.training import LAST, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_auto_precision_is_bfloat16_on_cuda_and_where_the_cpu_runs_it_fast(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for fast, on_cpu in [(True, torch.bfloat16), (False, None)]:
        monkeypatch.setattr(core.objective, "fast_bfloat16", lambda f=fast: f)
        assert autocast_dtype("auto", cpu) is on_cpu
        assert autocast_dtype("auto", cuda) is torch.bfloat16
        assert autocast_dtype("float32", cuda) is None
        assert autocast_dtype("bfloat16", cpu) is torch.bfloat16


def test_bfloat16_forward_is_near_float32_and_the_loss_stays_float32(training_set):
    """The autocast reaches the model (the loss moves) by well under the gap between a trained
    and an untrained model, and the loss itself is summed in float32."""
    model, batch = tiny_model().eval(), batch_of(training_set)
    exact, count = batch_loss(model, batch, TINY)
    rough, same_count = batch_loss(model, batch, TINY, autocast=torch.bfloat16)
    assert rough.dtype == torch.float32 and torch.equal(count, same_count)
    change = abs(rough.item() - exact.item()) / exact.item()
    assert 0 < change < 0.01, change


def test_run_dropout_replaces_the_models_and_is_saved(training_set, tmp_path):
    base = train(tiny_config(training_set, tmp_path / "base", max_steps=2), dims=TINY)
    assert base.model.dims.dropout == TINY.dropout == 0.1
    tuned = train(tiny_config(training_set, tmp_path / "tuned", max_steps=2, dropout=0.0,
                              init=tmp_path / "base" / LAST))
    rates = {m.p for m in tuned.model.modules() if isinstance(m, nn.Dropout)}
    assert rates == {0.0}
    saved, _, meta = load_model(tmp_path / "tuned" / LAST)
    assert saved.dims.dropout == 0.0 and meta["train"]["dropout"] == 0.0
    assert read_meta(tmp_path / "base" / LAST)["model"]["dropout"] == 0.1


@pytest.mark.parametrize("change, field", [({"precision": "float16"}, "precision"),
                                           ({"dropout": 1.0}, "dropout"),
                                           ({"dropout": -0.1}, "dropout")])
def test_bad_settings_are_refused_by_name(training_set, tmp_path, change, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(training_set, tmp_path, **change)


def test_cli_train_takes_precision_and_dropout(training_set, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(training_set), "--out", str(run), "--steps", "2",
            "--model", "small", "--batch-size", "2", "--window", str(WINDOW_S), "--workers", "0"]
    result = CliRunner().invoke(main, args + ["--precision", "float32", "--dropout", "0"])
    assert result.exit_code == 0, result.output
    meta = read_meta(run / LAST)
    assert meta["train"]["precision"] == "float32" and meta["model"]["dropout"] == 0.0
    refused = CliRunner().invoke(main, args + ["--precision", "float16"])
    assert refused.exit_code == 2 and "float16" in refused.output
