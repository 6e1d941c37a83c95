"""The training recipe of `fit`: optimizer (Adam, AdamW), learning-rate schedule and warm-up, label smoothing, monitor.

One small frozen record, checked once before anything is built, recorded in the model card's hparams and turned
into a Keras optimizer here, so that the loop and the compiled step read one object.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

from eokit._checks import did_you_mean

#: Optimizers `fit` builds by name.
OPTIMIZERS = ("adam", "adamw")
#: Learning-rate schedules after the warm-up: constant, or cosine decay to zero at the last epoch.
SCHEDULES = ("constant", "cosine")
#: What early stopping and the best-epoch restore watch: the validation loss (lower is better) or the validation
#: macro F1 (higher is better; what a class-imbalanced map is judged by).
MONITORS = ("val_loss", "val_macro_f1")


@dataclass(frozen=True)
class Recipe:
    """How `fit` optimises: optimizer, weight decay, schedule, warm-up epochs, label smoothing and the monitor."""

    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: int = 0
    label_smoothing: float = 0.0
    monitor: str = "val_loss"

    def as_dict(self) -> dict[str, Any]:
        """Return the recipe as a plain dict (for the model card)."""
        return asdict(self)


def _choice(what: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        hint = did_you_mean(str(value), allowed)
        raise ValueError(f"fit: {what} must be one of {list(allowed)}, got {value!r}{hint}")
    return value


def _real(what: str, value: Any, lo: float, hi: float, hi_open: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    ok = ok and lo <= float(value) and (float(value) < hi if hi_open else float(value) <= hi)
    if not ok:
        bound = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
        raise ValueError(f"fit: {what} must be a number in {bound}, got {value!r}")
    return float(value)


def make_recipe(
    optimizer: str = Recipe.optimizer,
    weight_decay: float | None = None,
    schedule: str = Recipe.schedule,
    warmup: int = Recipe.warmup,
    label_smoothing: float = Recipe.label_smoothing,
    monitor: str = Recipe.monitor,
    *,
    epochs: int,
    has_val: bool,
) -> Recipe:
    """Return the checked recipe; `weight_decay` None means 1e-4 for AdamW and 0 for Adam (which has none)."""
    optimizer = _choice("optimizer", optimizer, OPTIMIZERS)
    schedule = _choice("schedule", schedule, SCHEDULES)
    monitor = _choice("monitor", monitor, MONITORS)
    if weight_decay is None:
        wd = 1e-4 if optimizer == "adamw" else 0.0
    else:
        wd = _real("weight_decay", weight_decay, 0, 1, True)
    if optimizer == "adam" and wd > 0:
        raise ValueError(f"fit: weight_decay={wd} needs optimizer='adamw' (decoupled weight decay); Adam takes none")
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or not 0 <= int(warmup) < max(epochs, 1):
        raise ValueError(f"fit: warmup must be a whole number of epochs in [0, epochs={epochs}), got {warmup!r}")
    smoothing = _real("label_smoothing", label_smoothing, 0, 1, True)
    if monitor == "val_macro_f1" and not has_val:
        raise ValueError("fit: monitor='val_macro_f1' needs a validation set (val=...)")
    return Recipe(optimizer, wd, schedule, int(warmup), smoothing, monitor)


def learning_rate_at(recipe: Recipe, learning_rate: float, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Return the learning rate the recipe gives at optimizer step `step` (linear warm-up, then the schedule)."""
    warm = recipe.warmup * steps_per_epoch
    total = max(epochs * steps_per_epoch, 1)
    if step < warm:
        return learning_rate * (step + 1) / warm
    if recipe.schedule == "constant":
        return learning_rate
    progress = (step - warm) / max(total - warm, 1)
    return learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(recipe: Recipe, learning_rate: float, steps_per_epoch: int, epochs: int) -> Any:
    """Return the Keras optimizer of the recipe, its learning rate following `learning_rate_at` step by step."""
    import keras

    lr: Any = learning_rate
    if recipe.warmup or recipe.schedule != "constant":
        lr = _schedule_class()(recipe, learning_rate, steps_per_epoch, epochs)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=lr)


_SCHEDULE: Any = None


def _schedule_class() -> Any:
    """Return the Keras LearningRateSchedule class of the recipe (defined once, at first use)."""
    global _SCHEDULE
    if _SCHEDULE is not None:
        return _SCHEDULE
    import keras
    from keras import ops

    class _WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, recipe: Recipe, base: float, steps_per_epoch: int, epochs: int) -> None:
            self.recipe, self.base = recipe, float(base)
            self.warm = float(recipe.warmup * steps_per_epoch)
            self.total = float(max(epochs * steps_per_epoch, 1))

        def __call__(self, step: Any) -> Any:
            s = ops.cast(step, "float32")
            warm = self.base * (s + 1.0) / max(self.warm, 1.0)
            if self.recipe.schedule == "constant":
                after = ops.convert_to_tensor(self.base, "float32")
            else:
                progress = ops.minimum((s - self.warm) / max(self.total - self.warm, 1.0), 1.0)
                after = self.base * 0.5 * (1.0 + ops.cos(math.pi * progress))
            return ops.where(s < self.warm, warm, after)

        def get_config(self) -> dict[str, Any]:
            return {"recipe": self.recipe.as_dict(), "base": self.base, "warm": self.warm, "total": self.total}

    _SCHEDULE = _WarmupSchedule
    return _SCHEDULE
