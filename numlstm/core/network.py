"""Parameters of stacked recurrent layers (LSTM or GRU) with a dense head, in one flat buffer.

All weights live in one contiguous vector so that the optimizers, gradient
clipping and L-BFGS see a single array, and the kernels take views into it.
``table`` (int64, one row per layer and direction) holds ``[input, hidden,
offset_W, offset_U, offset_b, cell, direction]``; a bidirectional layer has two
rows, its forward one (direction 0) then its reverse one (direction 1), whose
outputs are concatenated (forward units first). ``head`` holds ``[input,
outputs, offset_W, offset_b, vocabulary, embedding_dim, offset_E]``: the dense
head, then the embedding layer of a network over token sequences (vocabulary 0
when there is none; its matrix ``E`` (vocabulary, embedding_dim) is first in
the buffer). Each layer's ``W``, ``U`` and ``b`` follow one another:

- LSTM: ``W`` (input, 4H), ``U`` (H, 4H), ``b`` (4H,), gate blocks ``[i|f|g|o]``;
- GRU: ``W`` (input, 3H), ``U`` (H, 3H), ``b`` (2, 3H) (input bias, then
  recurrent bias), gate blocks ``[z|r|n]``, as a Keras ``GRU(reset_after=True)``.

The ``cell`` column (an index into :data:`numlstm._cells.NAMES`, the same in every row) tells
:mod:`numlstm.core.training` and :mod:`numlstm.core.gpu` which compiled
kernels a network runs on: the choice is made once per call on a network,
never per step.
"""

import numpy as np

from numlstm._aligned import aligned_empty, aligned_zeros
from numlstm._cells import CELLS, NAMES, cell_spec
from numlstm._threads import one_blas_thread
from numlstm._validation import check_cell

# Gate blocks per layer, and the rows of its bias, for each cell.
CELL_COLUMN = 5  # the column of ``table`` holding the cell's index in NAMES
# Entries of ``head`` after the dense head's four: the embedding layer.
VOCABULARY, EMBED_DIM, EMBED_OFFSET = 4, 5, 6
DIRECTION_COLUMN = 6  # 0 forward, 1 reverse (the second row of a bidirectional layer)


class Network:
    """Stacked LSTM or GRU layers and a dense head over a flat parameter vector.

    Parameters
    ----------
    input_size : int
        Features per time step.
    hidden_sizes : sequence of int
        Units of each recurrent layer, bottom to top.
    output_size : int
        Outputs of the dense head.
    dtype : numpy dtype
        float32 or float64.
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent layer type, the same for every layer.
    bidirectional : bool, default False
        Every layer reads the sequence both ways (a Keras ``Bidirectional``
        with ``merge_mode="concat"``): 2 * hidden outputs per step.
    vocabulary : int, default 0
        With a vocabulary, the network reads integer token sequences through
        an embedding layer of ``input_size`` dimensions (token 0 is padding,
        masked out of the recurrence).
    """

    def __init__(self, input_size, hidden_sizes, output_size, dtype, cell="lstm", bidirectional=False,
                 vocabulary=0):
        self.input_size = int(input_size)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.output_size = int(output_size)
        self.dtype = np.dtype(dtype)
        self.cell = check_cell(cell)
        self.bidirectional = bool(bidirectional)
        self.vocabulary = int(vocabulary)
        self.directions = 2 if self.bidirectional else 1
        self.spec = cell_spec(self.cell)
        gates, bias_rows = self.spec.gates, self.spec.bias_rows
        rows = []
        offset = self.vocabulary * self.input_size
        fan_in = self.input_size
        for H in self.hidden_sizes:
            for direction in range(self.directions):
                oW = offset
                oU = oW + fan_in * gates * H
                ob = oU + H * gates * H
                offset = ob + bias_rows * gates * H
                rows.append((fan_in, H, oW, oU, ob, NAMES.index(self.cell), direction))
            fan_in = self.directions * H
        self.table = np.array(rows, dtype=np.int64).reshape(len(rows), 7)
        self.head = np.array([fan_in, self.output_size, offset, offset + fan_in * self.output_size,
                              self.vocabulary, self.input_size if self.vocabulary else 0, 0], dtype=np.int64)
        self.n_params = offset + fan_in * self.output_size + self.output_size
        self.params = aligned_zeros(self.n_params, self.dtype)

    def embedding(self, params):
        """The view ``E`` (vocabulary, input_size) of the embedding matrix, or None."""
        if not self.vocabulary:
            return None
        return params[:self.vocabulary * self.input_size].reshape(self.vocabulary, self.input_size)

    def layer(self, params, index, direction=0):
        """Views ``(W, U, b)`` of layer ``index`` (its reverse direction with
        ``direction=1``) in ``params`` (``b`` is (2, 3H) for a GRU)."""
        I, H, oW, oU, ob = (int(v) for v in self.table[index * self.directions + direction, :5])
        G = self.spec.gates * H
        b = params[ob:ob + self.spec.bias_rows * G].reshape(self.spec.bias_shape(H))
        return params[oW:oU].reshape(I, G), params[oU:ob].reshape(H, G), b

    def head_views(self, params):
        H, O, oW, ob = self.head[:4]
        return params[oW:ob].reshape(H, O), params[ob:ob + O]

    def initialize(self, rng):
        """Keras defaults: W glorot-uniform, U orthogonal; the bias zero, with an
        LSTM's forget block at 1; head kernel glorot-uniform, bias zero."""
        with one_blas_thread():  # the QRs must not leave BLAS threads spinning beside the kernels
            self._initialize(rng)
        return self

    def _initialize(self, rng):
        p = np.zeros(self.n_params, dtype=np.float64)
        if self.vocabulary:  # Keras' Embedding: uniform in [-0.05, 0.05]
            self.embedding(p)[:] = rng.uniform(-0.05, 0.05, size=(self.vocabulary, self.input_size))
        for index in range(len(self.hidden_sizes)):
            for direction in range(self.directions):
                W, U, b = self.layer(p, index, direction)
                W[:] = glorot_uniform(rng, W.shape)
                U[:] = orthogonal(rng, U.shape)
                H = U.shape[0]
                for block in self.spec.unit_bias_blocks:
                    b.reshape(-1, b.shape[-1])[0, block * H:(block + 1) * H] = 1.0  # the (input) bias
        Wd, _ = self.head_views(p)
        Wd[:] = glorot_uniform(rng, Wd.shape)
        self.params = aligned_empty(self.n_params, self.dtype)
        self.params[...] = p

    def get_weights(self, params=None):
        """Copies of the weights as ``{"cell", "layers": [{"W", "U", "b"}...], "head": {"W", "b"}}``,
        from ``self.params`` or from another vector ``params`` of the same layout.

        A bidirectional layer's dict has a ``"reverse"`` entry, ``{"W", "U", "b"}``
        of its reverse direction; a network over tokens has ``"embedding"``, the
        (vocabulary, embedding_dim) matrix."""
        params = self.params if params is None else params
        layers = []
        for i in range(len(self.hidden_sizes)):
            layer = dict(zip("WUb", (a.copy() for a in self.layer(params, i))))
            if self.bidirectional:
                layer["reverse"] = dict(zip("WUb", (a.copy() for a in self.layer(params, i, 1))))
            layers.append(layer)
        Wd, bd = self.head_views(params)
        weights = {"cell": self.cell, "layers": layers, "head": {"W": Wd.copy(), "b": bd.copy()}}
        if self.vocabulary:
            weights["embedding"] = self.embedding(params).copy()
        return weights

    def set_weights(self, weights):
        """Copy ``weights`` (the :meth:`get_weights` format) into the buffer, checking shapes.

        A ``"cell"`` entry, when there is one, must name this network's cell."""
        if not isinstance(weights, dict) or "layers" not in weights or "head" not in weights:
            raise TypeError("weights must be a dict with keys 'layers' and 'head', as returned by get_weights().")
        cell = weights.get("cell", self.cell)
        if cell != self.cell:
            raise ValueError(f"weights['cell'] is {cell!r} but this model has {self.cell!r} layers; load them into "
                             f"a model built with cell={cell!r}.")
        layers = weights["layers"]
        if len(layers) != len(self.hidden_sizes):
            raise ValueError(f"weights has {len(layers)} layer(s); this model has {len(self.hidden_sizes)}.")
        targets = []
        for index, layer in enumerate(layers):
            for name, view in zip("WUb", self.layer(self.params, index)):
                targets.append((f"weights['layers'][{index}]['{name}']", view, layer[name]))
            if self.bidirectional:
                if not isinstance(layer.get("reverse"), dict):
                    raise ValueError(f"weights['layers'][{index}] has no 'reverse' entry; this model's layers are "
                                     "bidirectional and need the weights of both directions.")
                for name, view in zip("WUb", self.layer(self.params, index, 1)):
                    targets.append((f"weights['layers'][{index}]['reverse']['{name}']", view,
                                    layer["reverse"][name]))
        if self.vocabulary:
            if "embedding" not in weights:
                raise ValueError("weights has no 'embedding' entry; this model reads tokens through an embedding "
                                 "layer and needs its matrix.")
            targets.append(("weights['embedding']", self.embedding(self.params), weights["embedding"]))
        for name, view in zip("Wb", self.head_views(self.params)):
            targets.append((f"weights['head']['{name}']", view, weights["head"][name]))
        for label, view, value in targets:
            value = np.asarray(value)
            if value.shape != view.shape:
                raise ValueError(f"{label} has shape {value.shape}; expected {view.shape}.{self._cell_hint(layers)}")
            if value.dtype.kind != "f":
                raise TypeError(f"{label} must be a float array, got dtype {value.dtype}.")
        for _, view, value in targets:
            view[...] = value
        return self

    def _cell_hint(self, layers):
        """A hint for weights of the wrong shape that look like those of the other cell."""
        U = np.asarray(layers[0].get("U", ())) if isinstance(layers[0], dict) else np.empty(0)
        for other in CELLS.values():
            if other.key != self.cell and U.ndim == 2 and U.shape[0] > 0 and U.shape[1] == other.gates * U.shape[0]:
                return (f" These look like the weights of {other.name} layers ({other.gates} gate blocks); this "
                        f"model has {self.spec.name} layers: build it with cell={other.key!r} to load them.")
        return ""


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
