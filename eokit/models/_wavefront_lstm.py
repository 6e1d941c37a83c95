"""Stacked LSTM run as a wavefront in one recurrent loop: the same function as Keras' stacked `LSTM` layers.

Keras runs a stack of LSTM layers one after another, each a loop of T dependent steps. Here one loop of
T + L - 1 iterations runs every layer: in iteration t, layer l takes its step t - l, from the output its lower
layer produced in the previous iteration. The L steps of an iteration depend on each other only through the
previous iteration's state, so TensorFlow's executor runs them side by side (with inter-op threads; see
`eokit.train.cpu_threads`). Gates, initialisers and weights follow `keras.layers.LSTM` (gate order i, f, c, o;
forget-gate bias 1), and the dropout between layers draws an independent mask per sample, step and unit, as a
`keras.layers.Dropout` on the lower layer's sequence does, so a stack here computes what the layer-by-layer
stack computes (tested with copied weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _layer_classes():
    import keras
    from keras import layers, ops

    class _WavefrontCell(layers.Layer):
        """RNN cell over [x_t, dropout masks, per-layer step flags] -> the top layer's h; state (h, c) per layer."""

        def __init__(self, n_in: int, units: Sequence[int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.n_in = int(n_in)
            self.units = [int(u) for u in units]
            self.state_size = [u for u in self.units for _ in (0, 1)]
            self.output_size = self.units[-1]
            self._mask_at = [self.n_in + sum(self.units[:i]) for i in range(len(self.units))]
            self._full = self.n_in + sum(self.units[:-1]) + len(self.units)  # input width with dropout masks

        def build(self, input_shape: Any) -> None:
            sizes = [self.n_in, *self.units[:-1]]
            self.kernels, self.recurrent, self.biases = [], [], []
            for i, (n, u) in enumerate(zip(sizes, self.units, strict=True)):
                self.kernels.append(self.add_weight(shape=(n, 4 * u), initializer="glorot_uniform", name=f"kernel_{i}"))
                self.recurrent.append(
                    self.add_weight(shape=(u, 4 * u), initializer="orthogonal", name=f"recurrent_{i}")
                )

                def forget_one(shape: Any, dtype: Any = None, u: int = u) -> Any:
                    return ops.concatenate([ops.zeros((u,)), ops.ones((u,)), ops.zeros((2 * u,))])

                self.biases.append(self.add_weight(shape=(4 * u,), initializer=forget_one, name=f"bias_{i}"))

        def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
            # the dropout masks are in the input only in training: at inference they would be (B, T, units) of ones
            masked = int(inputs.shape[-1]) == self._full
            flag_at = self.n_in + (sum(self.units[:-1]) if masked else 0)
            new = []
            for i in range(len(self.units)):
                h, c = states[2 * i], states[2 * i + 1]
                if i == 0:
                    x = inputs[:, : self.n_in]
                else:  # the lower layer's output of the previous iteration, i.e. of this layer's step
                    x = states[2 * i - 2]
                    if masked:
                        at = self._mask_at[i - 1]
                        x = x * inputs[:, at : at + self.units[i - 1]]
                z = ops.matmul(x, self.kernels[i]) + ops.matmul(h, self.recurrent[i]) + self.biases[i]
                zi, zf, zc, zo = ops.split(z, 4, axis=-1)
                c_new = ops.sigmoid(zf) * c + ops.sigmoid(zi) * ops.tanh(zc)
                h_new = ops.sigmoid(zo) * ops.tanh(c_new)
                at = flag_at + i  # 1 where t - i is one of this layer's steps
                step = inputs[:, at : at + 1]
                new += [h + step * (h_new - h), c + step * (c_new - c)]
            return new[-2], new

    @keras.saving.register_keras_serializable(package="eokit")
    class WavefrontLSTM(layers.Layer):
        """Stacked LSTM (B, T, C) -> the top layer's last output (B, units[-1]), dropout between layers."""

        def __init__(self, units: Sequence[int], dropout: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = [int(u) for u in units]
            self.dropout = float(dropout)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def build(self, input_shape: Any) -> None:
            self.cell = _WavefrontCell(int(input_shape[-1]), self.units, name="cell")
            self.rnn = layers.RNN(self.cell, name="rnn")
            self.rnn.build((input_shape[0], None, self.cell._full))

        def _masks(self, x: Any, training: Any) -> list:
            """Return the dropout masks (B, T, units[i]) of the outputs fed from layer i to layer i + 1 (none
            outside training or without dropout)."""
            if not (training and self.dropout > 0):
                return []
            b, t = ops.shape(x)[0], ops.shape(x)[1]
            ones = [ops.ones((b, t, u), dtype=x.dtype) for u in self.units[:-1]]
            return [keras.random.dropout(m, self.dropout, seed=self.seed_generator) for m in ones]

        def call(self, x: Any, training: Any = None) -> Any:
            depth = len(self.units)
            ones = ops.ones_like(x[:, :, :1])
            parts = [ops.pad(x, [[0, 0], [0, depth - 1], [0, 0]])]
            # the mask of layer i's output at step s is read by layer i + 1 in iteration s + i + 1
            parts += [
                ops.pad(m, [[0, 0], [i + 1, depth - 2 - i], [0, 0]]) for i, m in enumerate(self._masks(x, training))
            ]
            parts += [ops.pad(ones, [[0, 0], [i, depth - 1 - i], [0, 0]]) for i in range(depth)]
            return self.rnn(ops.concatenate(parts, axis=-1), training=training)

        def compute_output_shape(self, input_shape: Any) -> tuple:
            return (input_shape[0], self.units[-1])

        def get_config(self) -> dict:
            return {**super().get_config(), "units": self.units, "dropout": self.dropout, "seed": self.seed}

    return WavefrontLSTM


_LAYER = None


def WavefrontLSTM(**kwargs: Any) -> Any:
    """Return a WavefrontLSTM keras layer (class registered as eokit>WavefrontLSTM)."""
    register()
    assert _LAYER is not None
    return _LAYER(**kwargs)


def register() -> None:
    """Return None after registering the layer with Keras (needed before loading a saved wavefront LSTM)."""
    global _LAYER
    if _LAYER is None:
        _LAYER = _layer_classes()
