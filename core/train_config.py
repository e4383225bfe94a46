"""A training run's settings (core.training): what to train, on what, for how long and how;
checked when made, and stored in every checkpoint's meta."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16")  # TrainConfig.precision
DEVICES = ("auto", "cpu", "cuda")  # TrainConfig.device


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Frozen: checkpoints record it."""

    # Where: a data set folder (core.dataset) and the run folder this run writes.
    data: Path
    out: Path
    # What: core.model's preset, and the token language (a core.tokens.vocab preset; None: the
    # one the data set was built with; windows are re-tokenized from the stored maps).
    model: str = "small"
    # Or the weights of a model checkpoint to start from (fine-tuning, e.g. core/starter_model):
    # its sizes and token language, with a fresh optimizer, schedule and step count.
    init: Path | None = None
    vocab: str | None = None
    audio_pointer: bool = True  # core.model's audio pointer on the TIME_SHIFT logits
    beat_grid: bool = True  # the encoder reads the map's beat grid (core.beat_grid)
    # Windows: DESIGN §8's 10-20 s; held-out song sets for the validation loss.
    window_s: float = 16.0
    val_fraction: float = 0.1
    # How long: steps, or whole epochs over the training windows (exactly one of the two).
    max_steps: int | None = 2000
    epochs: int | None = None
    # Or a wall-clock budget (s) for the loop: the cosine then runs on the share of it spent
    # (or of the steps, whichever is further on), and the run ends, evaluated and saved, when it
    # is spent; the steps or epochs only cap it. A schedule sized from timed steps ends early or
    # late on a machine whose speed drifts; this one ends on time at the floor.
    budget_s: float | None = None
    batch_size: int = 8  # windows per step and process
    # AdamW and its schedule, nanoGPT's choices: betas (0.9, 0.95), decay 0.1 on matrices only,
    # warmup then cosine decay to a tenth of the peak rate, gradients clipped at norm 1.
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    clip: float = 1.0
    # Audio-conditioning dropout (DESIGN §7): the share of windows trained on silence.
    audio_dropout: float = 0.1  # also the share of windows trained without their beat grid
    # Loss weight of coordinate tokens against the rest (core.objective.token_weights); the
    # validation loss is weighed alike, so best/ is the best at this objective.
    coord_weight: float = 1.0
    # Bookkeeping, in steps; eval_batches caps the validation batches per evaluation.
    eval_interval: int = 200
    eval_batches: int = 50
    log_interval: int = 10
    checkpoint_interval: int = 500
    # Reproducibility and hardware: loader processes per training process; device "auto" is
    # CUDA when there is one, else CPU (the arithmetic: `precision` below).
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    # The forward pass's arithmetic: "bfloat16" autocast (float32 weights, optimizer and loss),
    # "float32", or "auto": bfloat16 on CUDA and on a CPU with fast bfloat16 (core.cpu: a
    # `small` step 1.3x faster there), float32 elsewhere.
    precision: str = "auto"
    # The residual dropout, replacing the model's (ModelDims.dropout, 0.1 in both presets) for
    # this run; None keeps it. Short runs on a CPU underfit: 0 learns faster per second.
    dropout: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        if self.init is not None:
            object.__setattr__(self, "init", Path(self.init))
        object.__setattr__(self, "betas", tuple(self.betas))
        self._verify()

    def _verify(self) -> None:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of max_steps and epochs")
        if min(self.max_steps or 1, self.epochs or 1, self.batch_size) < 1:
            raise ValueError("max_steps, epochs and batch_size must be positive")
        if not (self.lr > 0 and 0 <= self.min_lr_ratio <= 1 and self.clip > 0):
            raise ValueError("lr and clip must be positive and min_lr_ratio in [0, 1]")
        if not 0 < self.coord_weight <= 10:
            raise ValueError(f"coord_weight must lie in (0, 10], got {self.coord_weight}")
        if not (0 <= self.audio_dropout <= 1 and 0 <= self.val_fraction < 1):
            raise ValueError("audio_dropout must lie in [0, 1] and val_fraction in [0, 1)")
        if min(self.warmup_steps, self.seed, self.workers, self.weight_decay) < 0:
            raise ValueError("warmup_steps, seed, workers and weight_decay must be >= 0")
        if min(self.eval_interval, self.eval_batches, self.log_interval,
               self.checkpoint_interval) < 1:
            raise ValueError("intervals and eval_batches must be positive")
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"budget_s must be positive, got {self.budget_s}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "data": str(self.data), "out": str(self.out),
                "init": None if self.init is None else str(self.init),
                "betas": list(self.betas)}
