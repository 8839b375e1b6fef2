"""A network's shape as a flat parameter layout, its initialisers, and a small MLP handle."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.errors import TuilabError, choice_error
from tuilab.kernels import activations as act_ids
from tuilab.kernels import losses as loss_ids
from tuilab.kernels import mlp as mlp_kernels

HIDDEN_ACTIVATIONS = {
    "identity": act_ids.IDENTITY,
    "sigmoid": act_ids.SIGMOID,
    "tanh": act_ids.TANH,
    "relu": act_ids.RELU,
    "leaky_relu": act_ids.LEAKY_RELU,
    "elu": act_ids.ELU,
    "softplus": act_ids.SOFTPLUS,
    "gelu": act_ids.GELU,
}
OUTPUT_ACTIVATIONS = {**HIDDEN_ACTIVATIONS, "softmax": act_ids.SOFTMAX}
LOSSES = {"cross_entropy": loss_ids.CROSS_ENTROPY, "squared_error": loss_ids.SQUARED_ERROR}
INITIALISERS = (
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "torch_default",
    "uniform",  # U(-0.5, 0.5)
    "uniform_positive",  # U(0, 1)
    "normal",  # N(0, 1)
)
BIAS_INITS = ("zeros", "scheme")
DTYPES = {"float32": np.float32, "float64": np.float64}

# torch.nn.init.calculate_gain; activations torch has no gain for are relu-like (sqrt 2).
_GAINS = {
    "identity": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "leaky_relu": math.sqrt(2.0 / (1.0 + act_ids.LEAKY_SLOPE**2)),
}


def activation_gain(activation: str) -> float:
    """The gain torch.nn.init.calculate_gain gives an activation (sqrt 2 for elu/gelu/softplus)."""
    return _GAINS.get(activation, math.sqrt(2.0))


@dataclass(frozen=True)
class Layout:
    """Where each layer's weights and biases sit in the flat theta."""

    sizes: np.ndarray  # int64, input width, hidden widths..., output width
    w_off: np.ndarray  # int64 per layer
    b_off: np.ndarray  # int64 per layer
    size: int  # total parameter count

    @classmethod
    def of(cls, sizes) -> Layout:
        sizes = np.asarray(sizes, dtype=np.int64)
        w_off, b_off = [], []
        off = 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            w_off.append(off)
            off += int(n_in * n_out)
            b_off.append(off)
            off += int(n_out)
        return cls(sizes, np.array(w_off, np.int64), np.array(b_off, np.int64), off)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def layer(self, theta: np.ndarray, l: int) -> tuple[np.ndarray, np.ndarray]:
        """Views (W of shape (n_out, n_in), as torch.nn.Linear.weight, and b) of layer l in theta."""
        n_in, n_out = int(self.sizes[l]), int(self.sizes[l + 1])
        w0, b0 = int(self.w_off[l]), int(self.b_off[l])
        return theta[w0 : w0 + n_in * n_out].reshape(n_out, n_in), theta[b0 : b0 + n_out]

    def tensor_table(self) -> np.ndarray:
        """theta's tensors as int64 rows (offset, rows, cols): each W as torch's (n_out, n_in), each b as
        (offset, n_out, 0), a vector.  What optimizers that work per tensor (Adafactor, Muon) read."""
        rows = []
        for l in range(self.n_layers):
            n_in, n_out = int(self.sizes[l]), int(self.sizes[l + 1])
            rows += [(int(self.w_off[l]), n_out, n_in), (int(self.b_off[l]), n_out, 0)]
        return np.array(rows, dtype=np.int64)

    def layer_slice(self, l: int) -> slice:
        """The slice of theta holding layer l's W and b together."""
        return slice(int(self.w_off[l]), int(self.b_off[l] + self.sizes[l + 1]))


def _draw(rng, scheme: str, shape, fan_in: int, fan_out: int, gain: float) -> np.ndarray:
    if scheme == "xavier_normal":
        return rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape)
    if scheme == "xavier_uniform":
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if scheme == "kaiming_normal":
        return rng.normal(0.0, gain / math.sqrt(fan_in), shape)
    if scheme == "kaiming_uniform":
        bound = gain * math.sqrt(3.0 / fan_in)
        return rng.uniform(-bound, bound, shape)
    if scheme == "torch_default":  # nn.Linear: kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(fan_in))
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape)
    if scheme == "uniform":
        return rng.uniform(-0.5, 0.5, shape)
    if scheme == "uniform_positive":
        return rng.uniform(0.0, 1.0, shape)
    return rng.normal(0.0, 1.0, shape)


def init_params(
    layout: Layout,
    activations,
    scheme: str = "xavier_normal",
    bias: str = "zeros",
    seed: int = 0,
    dtype=np.float32,
) -> np.ndarray:
    """A fresh theta: weights from `scheme` (fans as torch.nn.init), biases zero or from the scheme.

    Values are drawn in float64 from numpy's PCG64 seeded with `seed` and then cast,
    so a float32 and a float64 network with the same seed start at the same point.
    The Kaiming gain is that of the layer's own activation.
    """
    if scheme not in INITIALISERS:
        raise choice_error("initialiser", scheme, INITIALISERS)
    if bias not in BIAS_INITS:
        raise choice_error("bias initialiser", bias, BIAS_INITS)
    rng = np.random.default_rng(seed)
    theta = np.zeros(layout.size, dtype=np.float64)
    for l in range(layout.n_layers):
        fan_in, fan_out = int(layout.sizes[l]), int(layout.sizes[l + 1])
        W, b = layout.layer(theta, l)
        gain = activation_gain(activations[l]) if scheme.startswith("kaiming") else 1.0
        W[...] = _draw(rng, scheme, W.shape, fan_in, fan_out, gain)
        if bias == "scheme":
            b[...] = _draw(rng, scheme, b.shape, fan_in, fan_out, gain)
    return theta.astype(dtype)


def _check_name(kind: str, value: str, table) -> int:
    if value not in table:
        raise choice_error(kind, value, table)
    return table[value]


class MLP:
    """A dense network: its layout, per-layer activations, output and loss, as kernel inputs.

    `sizes` is the full list [inputs, hidden..., outputs]. Validation happens here,
    before any kernel sees the arrays.
    """

    def __init__(
        self,
        sizes,
        activation="relu",
        output: str = "softmax",
        loss: str = "cross_entropy",
        dtype="float32",
    ):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise TuilabError(f"a network needs at least input and output sizes, got {sizes}")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise TuilabError(f"layer sizes must be whole numbers >= 1, got {s!r} in {sizes}")
        hidden = len(sizes) - 2
        names = [activation] * hidden if isinstance(activation, str) else list(activation)
        if len(names) != hidden:
            raise TuilabError(
                f"{len(names)} activations given for {hidden} hidden layers; give one or one per layer"
            )
        self.activations = names + [output]
        ids = [_check_name("activation", a, HIDDEN_ACTIVATIONS) for a in names]
        ids.append(_check_name("output activation", output, OUTPUT_ACTIVATIONS))
        self.loss_name = loss
        self.loss = _check_name("loss", loss, LOSSES)
        if self.loss == loss_ids.CROSS_ENTROPY and output != "softmax":
            raise TuilabError(
                f"loss 'cross_entropy' needs output 'softmax', got {output!r}; "
                "use output = 'softmax' or loss = 'squared_error'"
            )
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise choice_error("dtype", dtype, DTYPES)
            dtype = DTYPES[dtype]
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise choice_error("dtype", np.dtype(dtype).name, DTYPES)
        self.dtype = np.dtype(dtype)
        self.layout = Layout.of(sizes)
        self.acts = np.array(ids, dtype=np.int64)

    @property
    def sizes(self) -> list[int]:
        return [int(s) for s in self.layout.sizes]

    def init(self, scheme: str = "xavier_normal", bias: str = "zeros", seed: int = 0) -> np.ndarray:
        return init_params(self.layout, self.activations, scheme, bias, seed, self.dtype)

    def check_arrays(self, theta: np.ndarray, X: np.ndarray, Y: np.ndarray | None = None) -> None:
        """Raise a clear error for arrays the kernels would misread."""
        if theta.shape != (self.layout.size,) or theta.dtype != self.dtype:
            raise TuilabError(
                f"theta must be a {self.dtype.name} vector of {self.layout.size} values, "
                f"got {theta.dtype.name} {theta.shape}"
            )
        if not theta.flags.c_contiguous or not theta.flags.writeable:
            raise TuilabError("theta must be a contiguous, writeable array (use np.ascontiguousarray)")
        n_in, n_out = self.sizes[0], self.sizes[-1]
        if X.ndim != 2 or X.shape[1] != n_in or X.dtype != self.dtype:
            raise TuilabError(
                f"inputs must be a {self.dtype.name} array (n, {n_in}), got {X.dtype.name} {X.shape}"
            )
        if Y is not None and (Y.shape != (X.shape[0], n_out) or Y.dtype != self.dtype):
            raise TuilabError(
                f"targets must be a {self.dtype.name} array ({X.shape[0]}, {n_out}), "
                f"got {Y.dtype.name} {Y.shape}"
            )

    def loss_and_grad(self, theta, X, Y) -> tuple[float, np.ndarray]:
        """Loss over (X, Y) as one batch and its gradient (a new array)."""
        self.check_arrays(theta, X, Y)
        grad = np.empty_like(theta)
        L = self.layout
        X = np.ascontiguousarray(X)
        Y = np.ascontiguousarray(Y)
        value = mlp_kernels.mlp_loss_and_grad(
            theta, X, Y, L.w_off, L.b_off, L.sizes, self.acts, self.loss, grad
        )
        return float(value), grad

    def evaluate(self, theta, X, Y, batch: int = 1024) -> tuple[float, np.ndarray]:
        """(mean loss over all rows, output activations), `batch` rows per forward pass."""
        self.check_arrays(theta, X, Y)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        L = self.layout
        value = mlp_kernels.mlp_evaluate(
            theta, np.ascontiguousarray(X), np.ascontiguousarray(Y), L.w_off, L.b_off, L.sizes,
            self.acts, self.loss, out, max(1, min(batch, X.shape[0])),
        )
        return float(value), out

    def predict(self, theta, X, batch: int = 1024) -> np.ndarray:
        """Output activations for every row of X."""
        self.check_arrays(theta, X)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        L = self.layout
        mlp_kernels.mlp_predict(
            theta, np.ascontiguousarray(X), L.w_off, L.b_off, L.sizes, self.acts, out,
            max(1, min(batch, X.shape[0])),
        )
        return out
