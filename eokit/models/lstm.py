"""Stacked LSTM crop-type classifier (the ExtremeEarth mission's model) over masked S2 time series."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eokit.models._common import doy_features, has_gpu, masked_features, timeseries_inputs
from eokit.models._wavefront_lstm import WavefrontLSTM


def build_lstm(
    n_bands: int,
    n_timesteps: int,
    n_classes: int,
    units: Sequence[int] | int = (128, 128),
    dropout: float = 0.2,
    masking: str = "multiply",
    dense: int = 0,
    unroll: bool = False,
    use_doy: bool = False,
    wavefront: bool | None = None,
) -> Any:
    """Return an uncompiled keras.Model: stacked LSTM over {x, mask, doy} -> softmax class probabilities.

    `units` gives one LSTM layer per entry (an int means one layer). `masking="multiply"` zeroes invalid
    observations and feeds the mask as an extra channel (fast, XLA-friendly); `masking="keras"` passes the
    mask to the LSTM so that invalid steps are skipped and the state is carried over them. `use_doy` adds
    the acquisition's day of year (sin/cos of the annual angle) as two features, which aligns phenology
    across tiles whose acquisition dates differ. `wavefront` runs a stack of two or more layers in one
    recurrent loop (`eokit.models._wavefront_lstm`: the same function, faster on CPU); by default it does so
    on CPU with `masking="multiply"` and no `unroll`, while on a GPU Keras' LSTM layers use cuDNN.
    """
    import keras
    from keras import layers, ops

    if isinstance(units, int):
        units = [units]
    units = [int(u) for u in units]
    if not units or min(units) < 1:
        raise ValueError(f"lstm: units must be one or more positive sizes, got {units}")
    if masking not in ("multiply", "keras"):
        raise ValueError(f"lstm: masking must be 'multiply' or 'keras', got {masking!r}")
    inputs = timeseries_inputs(n_timesteps, n_bands)
    if masking == "multiply":
        h = masked_features(inputs)
        mask = None
    else:
        h = inputs["x"]
        mask = ops.cast(inputs["mask"], "bool")
    if use_doy:
        h = ops.concatenate([h, doy_features(inputs)], axis=-1)
    if _use_wavefront(wavefront, units, masking, unroll):
        h = WavefrontLSTM(units=units, dropout=dropout, name="lstm")(h)
        if dropout:
            h = layers.Dropout(dropout, name=f"dropout_{len(units) - 1}")(h)
        units = []
    for i, u in enumerate(units):
        last = i == len(units) - 1
        h = layers.LSTM(u, return_sequences=not last, unroll=unroll, name=f"lstm_{i}")(h, mask=mask)
        if dropout:
            h = layers.Dropout(dropout, name=f"dropout_{i}")(h)
    if dense:
        h = layers.Dense(int(dense), activation="relu", name="dense")(h)
    out = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(h)
    return keras.Model(inputs, out, name="lstm")


def _use_wavefront(wavefront: bool | None, units: Sequence[int], masking: str, unroll: bool) -> bool:
    """Return whether the stack runs as one wavefront loop: as asked (refused where it cannot), else on CPU for
    two or more layers over multiplied masks without unrolling."""
    if wavefront:
        if masking != "multiply" or unroll:
            raise ValueError(
                "lstm: wavefront=True needs masking='multiply' and unroll=False, "
                f"got masking={masking!r}, unroll={unroll}"
            )
        return True
    if wavefront is None:
        return len(units) >= 2 and masking == "multiply" and not unroll and not has_gpu()
    return False
