"""Parameters of a stacked LSTM with a dense head, in one flat buffer.

All weights live in one contiguous vector so that the optimizers, gradient
clipping and L-BFGS see a single array, and the kernels take views into it.
``table`` (int64, one row per layer) holds ``[input, hidden, offset_W,
offset_U, offset_b]``; ``head`` holds ``[hidden, outputs, offset_W, offset_b]``.
"""

import numpy as np


class Network:
    """Stacked LSTM layers and a dense head over a flat parameter vector.

    Parameters
    ----------
    input_size : int
        Features per time step.
    hidden_sizes : sequence of int
        Units of each LSTM layer, bottom to top.
    output_size : int
        Outputs of the dense head.
    dtype : numpy dtype
        float32 or float64.
    """

    def __init__(self, input_size, hidden_sizes, output_size, dtype):
        self.input_size = int(input_size)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.output_size = int(output_size)
        self.dtype = np.dtype(dtype)
        rows = []
        offset = 0
        fan_in = self.input_size
        for H in self.hidden_sizes:
            oW = offset
            oU = oW + fan_in * 4 * H
            ob = oU + H * 4 * H
            offset = ob + 4 * H
            rows.append((fan_in, H, oW, oU, ob))
            fan_in = H
        self.table = np.array(rows, dtype=np.int64).reshape(len(rows), 5)
        self.head = np.array([fan_in, self.output_size, offset, offset + fan_in * self.output_size], dtype=np.int64)
        self.n_params = offset + fan_in * self.output_size + self.output_size
        self.params = np.zeros(self.n_params, dtype=self.dtype)

    def layer(self, params, index):
        """Views ``(W, U, b)`` of layer ``index`` in ``params``."""
        I, H, oW, oU, ob = self.table[index]
        G = 4 * H
        return (params[oW:oU].reshape(I, G), params[oU:ob].reshape(H, G), params[ob:ob + G])

    def head_views(self, params):
        H, O, oW, ob = self.head
        return params[oW:ob].reshape(H, O), params[ob:ob + O]

    def initialize(self, rng):
        """Keras defaults: W glorot-uniform, U orthogonal, b zero with the
        forget block at 1; head kernel glorot-uniform, bias zero."""
        p = np.zeros(self.n_params, dtype=np.float64)
        for index in range(len(self.hidden_sizes)):
            W, U, b = self.layer(p, index)
            W[:] = glorot_uniform(rng, W.shape)
            U[:] = orthogonal(rng, U.shape)
            H = U.shape[0]
            b[H:2 * H] = 1.0
        Wd, _ = self.head_views(p)
        Wd[:] = glorot_uniform(rng, Wd.shape)
        self.params = p.astype(self.dtype)
        return self

    def get_weights(self, params=None):
        """Copies of the weights as ``{"layers": [{"W", "U", "b"}...], "head": {"W", "b"}}``,
        from ``self.params`` or from another vector ``params`` of the same layout."""
        params = self.params if params is None else params
        layers = [dict(zip("WUb", (a.copy() for a in self.layer(params, i))))
                  for i in range(len(self.hidden_sizes))]
        Wd, bd = self.head_views(params)
        return {"layers": layers, "head": {"W": Wd.copy(), "b": bd.copy()}}

    def set_weights(self, weights):
        """Copy ``weights`` (the :meth:`get_weights` format) into the buffer, checking shapes."""
        if not isinstance(weights, dict) or "layers" not in weights or "head" not in weights:
            raise TypeError("weights must be a dict with keys 'layers' and 'head', as returned by get_weights().")
        layers = weights["layers"]
        if len(layers) != len(self.hidden_sizes):
            raise ValueError(f"weights has {len(layers)} layer(s); this model has {len(self.hidden_sizes)}.")
        targets = []
        for index, layer in enumerate(layers):
            for name, view in zip("WUb", self.layer(self.params, index)):
                targets.append((f"weights['layers'][{index}]['{name}']", view, layer[name]))
        for name, view in zip("Wb", self.head_views(self.params)):
            targets.append((f"weights['head']['{name}']", view, weights["head"][name]))
        for label, view, value in targets:
            value = np.asarray(value)
            if value.shape != view.shape:
                raise ValueError(f"{label} has shape {value.shape}; expected {view.shape}.")
            if value.dtype.kind != "f":
                raise TypeError(f"{label} must be a float array, got dtype {value.dtype}.")
        for _, view, value in targets:
            view[...] = value
        return self


def glorot_uniform(rng, shape):
    fan_in, fan_out = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def orthogonal(rng, shape):
    """Keras' Orthogonal initializer for a 2-D shape."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q.T if rows < cols else q
