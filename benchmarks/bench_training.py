"""Training throughput (samples/s) of eokit's LSTM (2 x 128, T=76, C=9, batch 256) against plain Keras and PyTorch.

Rows:
- eokit `train.fit("lstm")` (custom loop, tf.data from an xarray set, class weights, masking, its stack run as
  one wavefront loop) vs the same architecture in plain Keras defaults (`Sequential` + `compile` + `fit` on
  numpy arrays), both in the thread pools `eokit.train.cpu_threads()` sets, as notebook 02 does (one thread
  per op, one op per core: a process-wide setting, so the baseline gets it too);
- eokit vs the BreizhCrops LSTM design in PyTorch (input LayerNorm, nn.LSTM, LayerNorm over the final cell
  states, linear head; Russwurm et al. 2020) when torch imports, on the same random data in the same run.
Each figure is the best of the timed epochs after a warm-up epoch (tracing/compilation excluded).
`python benchmarks/bench_training.py [--quick] [--gpu]`; the gpu mode runs the same rows on a GPU.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, report  # noqa: E402

T, C, K, UNITS, BATCH = 76, 9, 16, 128, 256


def _machine(gpu: bool) -> str:
    if gpu:
        import tensorflow as tf

        devs = tf.config.list_physical_devices("GPU")
        name = tf.config.experimental.get_device_details(devs[0]).get("device_name", "GPU") if devs else "GPU"
        return f"gpu {name}"
    return MACHINE


def _pools(pools: dict) -> str:
    return ", ".join(f"{k} {v or 'default'}" for k, v in pools.items())


def _random_set(n: int, seed: int = 0):
    import xarray as xr

    rng = np.random.default_rng(seed)
    refl = rng.integers(0, 6000, (n, T, C)).astype(np.int16)
    flag = np.where(rng.random((n, T)) < 0.2, 1, 0).astype(np.uint8)
    dates = np.datetime64("2018-01-01") + (np.arange(T) * 5).astype("timedelta64[D]")
    date = np.broadcast_to(dates.astype("datetime64[ns]"), (n, T)).copy()
    label = rng.integers(0, K, n).astype(np.int64)
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), refl),
            "flag": (("sample", "time"), flag),
            "date": (("sample", "time"), date),
            "label": (("sample",), label),
            "label_name": (("sample",), np.array([f"c{v}" for v in label])),
            "tile": (("sample",), np.array(["T0"] * n)),
            "source_file": (("sample",), np.array(["random"] * n)),
        },
        coords={"band": [f"B{i}" for i in range(C)]},
    )


def _keras_plain(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """Return a function running one epoch of the plain-Keras LSTM (compiled, warmed up), returning seconds."""
    import keras

    keras.utils.set_random_seed(0)
    # eokit's default LSTM architecture (dropout 0.2 after each LSTM layer), built the plain Keras way
    model = keras.Sequential(
        [
            keras.Input((T, C)),
            keras.layers.LSTM(UNITS, return_sequences=True),
            keras.layers.Dropout(0.2),
            keras.layers.LSTM(UNITS),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(K, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)

    def epoch() -> float:
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return time.perf_counter() - t0

    return epoch


def _torch_breizhcrops(x: np.ndarray, y: np.ndarray, gpu: bool) -> Callable[[], float] | None:
    """Return a function running one epoch of the BreizhCrops LSTM in PyTorch (warmed up), or None without torch."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None

    class BreizhLSTM(nn.Module):
        """The BreizhCrops LSTM (breizhcrops.models.LSTM), unidirectional, 2 layers of 128."""

        def __init__(
            self, input_dim: int, num_classes: int, hidden_dims: int = 128, num_layers: int = 2, dropout: float = 0.2
        ):
            super().__init__()
            self.inlayernorm = nn.LayerNorm(input_dim)
            self.clayernorm = nn.LayerNorm(hidden_dims * num_layers)
            self.lstm = nn.LSTM(
                input_size=input_dim,
                hidden_size=hidden_dims,
                num_layers=num_layers,
                bias=False,
                batch_first=True,
                dropout=dropout,
                bidirectional=False,
            )
            self.linear_class = nn.Linear(hidden_dims * num_layers, num_classes, bias=True)

        def forward(self, x):
            x = self.inlayernorm(x)
            _, (h, c) = self.lstm(x)
            nlayers, batchsize, n_hidden = c.shape
            h = self.clayernorm(c.transpose(0, 1).contiguous().view(batchsize, nlayers * n_hidden))
            return torch.log_softmax(self.linear_class(h), dim=-1)

    dev = torch.device("cuda" if gpu and torch.cuda.is_available() else "cpu")
    if gpu and dev.type != "cuda":
        return None
    torch.manual_seed(0)
    model = BreizhLSTM(C, K).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x).float(), torch.from_numpy(y).long()),
        batch_size=BATCH,
        shuffle=True,
    )
    default_threads = torch.get_num_threads()

    def one(threads: int) -> float:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            opt.zero_grad()
            loss = nn.functional.nll_loss(model(xb), yb)
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        torch.set_num_threads(default_threads)
        return time.perf_counter() - t0

    settings = sorted({default_threads, 1}) if dev.type == "cpu" else [default_threads]
    for t in settings:
        one(t)  # warm-up

    def epoch() -> float:
        # the baseline gets its better CPU thread setting: all cores, or one (no OpenMP contention)
        return min(one(t) for t in settings)

    return epoch


def run(quick: bool = False, gpu: bool = False, tiny: bool = False) -> list[dict]:
    """Return benchmark rows {what, baseline, eokit, ratio, unit, machine} of LSTM training samples/s.

    The contenders alternate epoch by epoch (eokit, plain Keras, PyTorch, eokit, ...) so that load from
    other processes hits them alike; each figure is its best epoch after warm-up. `tiny`: 256 samples, one
    timed epoch (a smoke test).
    """
    from eokit import train
    from eokit.train import _prepare_ts

    pools = train.cpu_threads()  # as notebook 02 does for its LSTM; plain Keras runs in the same pools
    import tensorflow as tf

    if gpu and not tf.config.list_physical_devices("GPU"):
        raise RuntimeError("gpu mode: TensorFlow sees no GPU")
    if not gpu:
        tf.config.set_visible_devices([], "GPU")
    n = 256 if tiny else 1024 if quick else 4096
    rounds = 1 if tiny else 2 if quick else 4
    ds = _random_set(n)
    clear = ds["flag"].values == 0
    refl = ds["reflectance"].values.astype(float)
    mean, std = refl[clear].mean(0), refl[clear].std(0)
    x = _prepare_ts(ds["reflectance"].values, ds["flag"].values, ds["date"].values, mean, std, T, "mask")["x"]
    y = ds["label"].values
    machine = _machine(gpu)
    baselines = {"keras": _keras_plain(x, y)}
    torch_epoch = _torch_breizhcrops(x, y, gpu)
    if torch_epoch is not None:
        baselines["torch"] = torch_epoch
    times: dict[str, list[float]] = {k: [] for k in baselines}

    def interleave(epoch: int, logs: dict) -> None:
        if epoch >= 1:  # eokit's first epoch traces its step: not timed, nor are the baselines then
            for k, fn in baselines.items():
                times[k].append(fn())

    _, card, _ = train.fit(
        "lstm",
        ds,
        None,
        epochs=rounds + 1,
        batch_size=BATCH,
        seed=0,
        progress=False,
        early_stopping=None,
        checkpoint=False,
        hparams={"units": [UNITS, UNITS]},
        callbacks=[interleave],
    )
    ours = n / min(card["metrics"]["epoch_seconds"][1:])
    plain = n / min(times["keras"])
    rows = [
        {
            "what": f"LSTM 2x128 training vs plain Keras fit (T=76, C=9, batch 256; TF pools {_pools(pools)})",
            "baseline": round(plain, 1),
            "eokit": round(ours, 1),
            "ratio": round(ours / plain, 3),
            "unit": "samples/s",
            "machine": machine,
        }
    ]
    if "torch" in times:
        rate = n / min(times["torch"])
        rows.append(
            {
                "what": "LSTM 2x128 training vs PyTorch BreizhCrops LSTM (same data)",
                "baseline": round(rate, 1),
                "eokit": round(ours, 1),
                "ratio": round(ours / rate, 3),
                "unit": "samples/s",
                "machine": machine,
            }
        )
    return rows


if __name__ == "__main__":
    gpu = "--gpu" in sys.argv or "gpu" in sys.argv[1:]
    report(run(quick="--quick" in sys.argv, gpu=gpu), "training_gpu" if gpu else "training")
