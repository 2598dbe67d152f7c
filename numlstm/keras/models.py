"""``Sequential`` and ``load_model``: Keras model code, run by numlstm's network.

A ``Sequential`` of :mod:`numlstm.keras.layers` is one numlstm network
(:class:`numlstm.core.network.Network`): the layers are checked as they are
added, the network is made when the input's shape is known (from ``Input``,
``input_shape=`` or the first ``fit``/``predict``), and ``fit`` runs numlstm's
compiled epochs with Keras' arguments, callbacks and ``History``.

Weights move to and from Keras unchanged: ``get_weights()``/``set_weights()``
use Keras' order and shapes (the embedding matrix, then ``kernel``,
``recurrent_kernel``, ``bias`` per recurrent layer, forward then backward for a
``Bidirectional`` one, then the Dense ``kernel`` and ``bias``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import numpy as np

from numlstm._cells import cell_spec
from numlstm._threads import kernel_threads
from numlstm.core import cpu_engine as _engine
from numlstm.core import losses as _losses
from numlstm.core import training as _training
from numlstm.core.network import Network
from numlstm.keras import callbacks as _callbacks
from numlstm.keras import layers as _layers
from numlstm.keras import optimizers as _optimizers
from numlstm.keras import utils as _utils
from numlstm.keras.files import read_keras_file, read_numlstm_file, write_numlstm_file

__all__ = ["Sequential", "load_model"]

log = logging.getLogger("numlstm.keras")

DTYPE = np.dtype(np.float32)

# Keras loss names -> (numlstm loss, the Dense activation it needs, sparse integer labels)
LOSSES = {
    "mse": (_losses.MSE, "linear", False), "mean_squared_error": (_losses.MSE, "linear", False),
    "mae": (_losses.MAE, "linear", False), "mean_absolute_error": (_losses.MAE, "linear", False),
    "huber": (_losses.HUBER, "linear", False), "huber_loss": (_losses.HUBER, "linear", False),
    "binary_crossentropy": (_losses.BINARY_CE, "sigmoid", False),
    "categorical_crossentropy": (_losses.CATEGORICAL_CE, "softmax", False),
    "sparse_categorical_crossentropy": (_losses.CATEGORICAL_CE, "softmax", True),
}
REGRESSION_METRICS = ("mae", "mean_absolute_error", "mse", "mean_squared_error", "root_mean_squared_error")
ACCURACY_METRICS = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
_RANK = {"input": 0, "text": 1, "embedding": 2, "recurrent": 3, "dense": 4}
_LOSS_FOR = {"linear": "'mse', 'mae' or 'huber'", "sigmoid": "'binary_crossentropy'",
             "softmax": "'categorical_crossentropy' or 'sparse_categorical_crossentropy'"}


def _describe(layer):
    return f"{type(layer).__name__} {layer.name!r}"


def _check_layer(layer):
    """A TypeError/ValueError for a layer numlstm's network has no counterpart for."""
    if not isinstance(layer, _layers.Layer):
        module = type(layer).__module__ or ""
        hint = (f" It is a Keras {type(layer).__name__}: import it from numlstm.keras.layers instead."
                if module.split(".")[0] in ("keras", "tensorflow", "tf_keras") else "")
        raise TypeError(f"Sequential takes layers of numlstm.keras.layers ({', '.join(_layers.SUPPORTED)}), got "
                        f"{type(layer).__name__}.{hint}")
    if isinstance(layer, _layers.Unsupported):
        extra = (" A Lambda runs Python code inside the model, which numlstm's compiled network cannot."
                 if type(layer).__name__ == "Lambda" else "")
        raise ValueError(f"{_describe(layer)} is not supported by numlstm.keras.{extra} Its network is "
                         f"{_layers.STACK}.")
    if type(layer).__module__ != _layers.__name__:
        raise ValueError(f"{_describe(layer)} is a custom layer, which numlstm.keras cannot run: its network is "
                         f"{_layers.STACK}.")


def _check_dropout_layers(layers):
    """Where a Dropout layer (rate above 0) may stand: on the input of a recurrent layer
    (numlstm draws its mask anew at every step, as Keras) or of the Dense layer."""
    waiting = []
    for layer in layers:
        if isinstance(layer, _layers.Dropout):
            if layer.rate > 0:
                waiting.append(layer)
            continue
        if waiting and layer.kind in ("input", "text", "embedding"):
            raise ValueError(f"{_describe(waiting[0])} comes before {_describe(layer)}: numlstm.keras applies Dropout "
                             "to the inputs of a recurrent layer or of the Dense layer (between Embedding and LSTM, "
                             "between recurrent layers, before Dense); move it there.")
        if waiting and layer.kind == "recurrent" and layer.dropout > 0:
            raise ValueError(f"{_describe(waiting[0])} comes right before {_describe(layer)}, which has dropout="
                             f"{layer.dropout} of its own: numlstm draws one kind of input mask per layer. Keep the "
                             "Dropout layer (a new mask at every step) or the layer's dropout= (one mask per "
                             "sequence), not both.")
        waiting = []
    if waiting and any(layer.kind == "dense" for layer in layers):
        raise ValueError(f"{_describe(waiting[0])} comes after the Dense layer, which gives the model's outputs; "
                         "numlstm.keras does not drop outputs. Put it before the Dense layer, or remove it.")


def _check_stack(layers, complete):
    """Check the order and the agreement of ``layers`` (``complete``: nothing more will be added)."""
    _check_dropout_layers(layers)
    kept = [layer for layer in layers if not isinstance(layer, _layers.Dropout)]
    recurrent = [layer for layer in kept if layer.kind == "recurrent"]
    previous = None
    for index, layer in enumerate(kept):
        if previous is not None:
            rank, before = _RANK[layer.kind], _RANK[previous.kind]
            if layer.kind == "input":
                raise ValueError(f"{_describe(layer)} must be the first layer of the model.")
            if rank < before or (rank == before and layer.kind != "recurrent"):
                what = ("numlstm's network ends in one Dense layer; hidden Dense layers are not part of it"
                        if previous.kind == "dense" else f"numlstm.keras builds {_layers.STACK}")
                raise ValueError(f"{_describe(layer)} cannot come after {_describe(previous)}: {what}.")
            if previous.kind == "recurrent" and layer.kind == "recurrent" and not previous.return_sequences:
                raise ValueError(f"{_describe(layer)} follows {_describe(previous)}, which has return_sequences="
                                 "False and passes one vector per sequence; set return_sequences=True on every "
                                 "recurrent layer but the last, to stack them.")
            if previous.kind == "recurrent" and layer.kind == "dense" and previous.return_sequences:
                raise ValueError(f"{_describe(previous)} is the last recurrent layer and has return_sequences=True;"
                                 " numlstm's Dense layer reads the last step's state (one output per sequence, not"
                                 " per step): set return_sequences=False on the last recurrent layer.")
        if layer.kind == "text" and index > (1 if kept[0].kind == "input" else 0):
            raise ValueError(f"{_describe(layer)} must come first (after Input): it turns strings into token ids.")
        previous = layer
    if recurrent:
        first = recurrent[0]
        for layer in recurrent[1:]:
            if layer.cell != first.cell:
                raise ValueError(f"{_describe(layer)} is {layer.cell.upper()} but {_describe(first)} is "
                                 f"{first.cell.upper()}: numlstm's network has one kind of recurrent layer; use "
                                 "LSTM or GRU throughout.")
            if isinstance(layer, _layers.Bidirectional) != isinstance(first, _layers.Bidirectional):
                raise ValueError(f"{_describe(layer)} and {_describe(first)}: numlstm's network has every recurrent "
                                 "layer wrapped in Bidirectional, or none; wrap all of them or none.")
        backwards = [layer for layer in recurrent if layer.go_backwards]
        if backwards and len(recurrent) > 1:
            raise ValueError(f"{_describe(backwards[0])} has go_backwards=True in a stack of {len(recurrent)} "
                             "recurrent layers; numlstm reads a sequence backwards only with a single recurrent "
                             "layer. Use Bidirectional layers, or one layer.")
    if complete:
        kinds = [layer.kind for layer in kept]
        if not recurrent:
            raise ValueError(f"the model has no LSTM or GRU layer; numlstm.keras builds {_layers.STACK}.")
        if kinds[-1] != "dense":
            raise ValueError(f"the model ends with {_describe(kept[-1])}; add a Dense layer, e.g. "
                             "model.add(Dense(1)): numlstm's network ends in one Dense layer.")
        if "text" in kinds and "embedding" not in kinds:
            raise ValueError("TextVectorization gives token ids: put an Embedding layer after it, e.g. "
                             "Embedding(len(vectorizer.get_vocabulary()), 64, mask_zero=True).")


class _Plan:
    """What a complete list of layers says about the network."""

    def __init__(self, layers):
        kept = [layer for layer in layers if not isinstance(layer, _layers.Dropout)]
        by_kind = {}
        for layer in kept:
            by_kind.setdefault(layer.kind, []).append(layer)
        self.input = by_kind.get("input", [None])[0]
        self.text = by_kind.get("text", [None])[0]
        self.embedding = by_kind.get("embedding", [None])[0]
        self.recurrent = by_kind["recurrent"]
        self.dense = by_kind["dense"][0]
        first = self.recurrent[0]
        self.cell = first.cell
        self.bidirectional = isinstance(first, _layers.Bidirectional)
        self.directions = 2 if self.bidirectional else 1
        self.drop = self._dropout_plan(layers)
        self.go_backwards = first.go_backwards
        self.first = kept[0]
        shape = next((layer.input_shape for layer in kept if layer.input_shape is not None), None)
        self.input_shape = shape

    def _dropout_plan(self, layers):
        """The network's dropout plan (``numlstm.core.cpu_engine.dropout_plan``): each
        recurrent layer's own ``dropout`` (one mask per sequence) and
        ``recurrent_dropout``; the Dropout layers before a recurrent layer as its input
        rate with a new mask at every step, before Dense as the head's input rate.
        Consecutive Dropout layers combine: the kept fraction is the product of theirs."""
        D = self.directions
        plan = np.zeros((len(self.recurrent) * D + 1, 3))
        kept, index = 1.0, 0
        for layer in layers:
            if isinstance(layer, _layers.Dropout):
                kept *= 1.0 - layer.rate
            elif layer.kind == "recurrent":
                between = 1.0 - kept
                rows = plan[index * D:(index + 1) * D]
                rows[:] = [between, layer.recurrent_dropout, 1.0] if between > 0 else [layer.dropout,
                                                                                      layer.recurrent_dropout, 0.0]
                kept, index = 1.0, index + 1
            elif layer.kind == "dense":
                plan[-1, 0], kept = 1.0 - kept, 1.0
        return plan

    def features(self):
        """Features per step from the declared input shape, or None when not declared."""
        if self.embedding is not None or self.input_shape is None:
            return None
        if len(self.input_shape) != 2:
            raise ValueError(f"the input shape {self.input_shape} has {len(self.input_shape)} entr"
                             f"{'y' if len(self.input_shape) == 1 else 'ies'}; {_describe(self.recurrent[0])} "
                             "reads (time, features) per sample: e.g. input_shape=(look_back, 1).")
        return self.input_shape[1]


class Sequential:
    """``keras.models.Sequential``: a list of layers, or layers added with :meth:`add`.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm.keras.models import Sequential
    >>> from numlstm.keras.layers import LSTM, Dense
    >>> model = Sequential([LSTM(4, input_shape=(3, 1)), Dense(1)])
    >>> model.count_params()
    101
    >>> [w.shape for w in model.get_weights()]
    [(1, 16), (4, 16), (16,), (4, 1), (1,)]
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = "sequential" if name is None else str(name)
        self.layers = []
        self.optimizer = None
        self.loss = None
        self.metrics_names = []
        self.stop_training = False
        self.history = None
        self._network = None
        self._features = None
        self._rng = _utils.new_generator()
        self._compiled = None
        self._opt_state = None
        self._opt_step = 0
        if layers is not None:
            if isinstance(layers, _layers.Layer) or not isinstance(layers, (list, tuple)):
                raise TypeError(f"Sequential takes a list of layers, got {type(layers).__name__}; write "
                                "Sequential([LSTM(50), Dense(1)]).")
            for layer in layers:
                self.add(layer)

    # --- layers -----------------------------------------------------------------
    def add(self, layer):
        """Append ``layer``; a layer numlstm's network cannot express raises here."""
        _check_layer(layer)
        _check_stack(self.layers + [layer], complete=False)
        if self._network is not None:
            raise ValueError(f"the model is already built; add {_describe(layer)} before the first fit, predict or "
                             "set_weights.")
        self.layers.append(layer)
        plan = self._plan(complete=False)
        if plan is not None and (plan.embedding is not None or plan.features() is not None):
            self._build(plan.features())

    def _plan(self, complete=True):
        try:
            _check_stack(self.layers, complete=True)
        except ValueError:
            if complete:
                raise
            return None
        return _Plan(self.layers)

    def _build(self, features):
        plan = self._plan()
        if plan.embedding is not None:
            emb = plan.embedding
            input_size = emb.output_dim
            vocabulary = emb.input_dim if emb.mask_zero else emb.input_dim + 1
        else:
            input_size, vocabulary = int(features), 0
        net = Network(input_size, [layer.units for layer in plan.recurrent], plan.dense.units, DTYPE,
                      cell=plan.cell, bidirectional=plan.bidirectional, vocabulary=vocabulary)
        net.initialize(self._rng)
        if plan.embedding is not None and not plan.embedding.mask_zero:
            net.embedding(net.params)[0] = 0  # the row of the shifted ids' unused 0
        self._network, self._features, self._plan_ = net, features, plan
        self._opt_state, self._opt_step = None, 0

    def build(self, input_shape=None):
        """Make the weights for inputs of ``input_shape`` ``(batch, time, features)``
        (``(batch, time)`` for token ids), as Keras' ``build``."""
        plan = self._plan()
        if self._network is not None:
            return
        if plan.embedding is not None or plan.text is not None:
            self._build(None)
            return
        shape = None if input_shape is None else tuple(input_shape)
        if shape is None or len(shape) != 3 or not isinstance(shape[2], (int, np.integer)) or shape[2] < 1:
            raise ValueError(f"build needs input_shape=(batch, time, features) for {_describe(plan.recurrent[0])}, "
                             f"got {input_shape!r}; e.g. model.build((None, look_back, 1)).")
        self._build(int(shape[2]))

    @property
    def built(self):
        return self._network is not None

    def _require_built(self, what):
        if self._network is None:
            plan = self._plan()
            features = plan.features()
            if features is None and plan.embedding is None:
                raise ValueError(f"{what} needs the model's input shape; give the first layer input_shape=(time, "
                                 "features), start with Input(shape=(time, features)), or call fit first.")
            self._build(features)
        return self._network

    # --- weights ------------------------------------------------------------------
    def _weight_labels(self):
        plan = self._plan_
        labels = []
        if plan.embedding is not None:
            labels.append(f"embeddings of {_describe(plan.embedding)}")
        for layer in plan.recurrent:
            for direction in (("forward ", "backward ") if plan.bidirectional else ("",)):
                labels += [f"{name} of {direction}{_describe(layer)}" for name in ("kernel", "recurrent_kernel",
                                                                                    "bias")]
        labels += [f"{name} of {_describe(plan.dense)}" for name in ("kernel", "bias")]
        return labels

    def get_weights(self):
        """The weights as Keras lists them: float32 copies, Keras' order and shapes."""
        self._require_built("get_weights")
        plan, weights = self._plan_, self._network.get_weights()
        out = []
        if plan.embedding is not None:
            E = weights["embedding"]
            out.append(E if plan.embedding.mask_zero else E[1:].copy())
        for layer in weights["layers"]:
            out += [layer["W"], layer["U"], layer["b"]]
            if plan.bidirectional:
                out += [layer["reverse"][k] for k in "WUb"]
        return out + [weights["head"]["W"], weights["head"]["b"]]

    def set_weights(self, weights):
        """Set the weights from a list in Keras' order and shapes (``get_weights()`` of
        this model or of the same model in Keras)."""
        self._require_built("set_weights")
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"weights must be a list of arrays, as from get_weights(), got "
                            f"{type(weights).__name__}.")
        current, labels = self.get_weights(), self._weight_labels()
        if len(weights) != len(current):
            raise ValueError(f"weights has {len(weights)} arrays; this model has {len(current)}: "
                             f"{', '.join(labels)}.")
        arrays = []
        for index, (value, target, label) in enumerate(zip(weights, current, labels)):
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(f"weights[{index}] ({label}) has shape {value.shape}; expected {target.shape}.")
            if value.dtype.kind != "f":
                raise TypeError(f"weights[{index}] ({label}) must be a float array, got dtype {value.dtype}.")
            if not np.isfinite(value).all():
                raise ValueError(f"weights[{index}] ({label}) holds NaN or infinite values.")
            arrays.append(value.astype(DTYPE))
        plan, net = self._plan_, self._network
        values = iter(arrays)
        weights = {"cell": plan.cell, "layers": []}
        if plan.embedding is not None:
            E = next(values)
            if not plan.embedding.mask_zero:
                E = np.concatenate([np.zeros((1, E.shape[1]), DTYPE), E])
            weights["embedding"] = E
        for _ in plan.recurrent:
            layer = dict(zip("WUb", (next(values) for _ in range(3))))
            if plan.bidirectional:
                layer["reverse"] = dict(zip("WUb", (next(values) for _ in range(3))))
            weights["layers"].append(layer)
        weights["head"] = {"W": next(values), "b": next(values)}
        net.set_weights(weights)

    def count_params(self):
        """Trainable parameters, counted as Keras counts them."""
        if self._network is None:
            raise ValueError(f"the model {self.name!r} is not built yet, so it has no weights to count; give the "
                             "first layer input_shape=, or call fit or predict first.")
        return int(sum(w.size for w in self.get_weights()))

    # --- compile ------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, **kwargs):
        """Keras' ``compile``: an optimizer (``"adam"``, ``"sgd"`` or an instance), a loss
        by its Keras name, and metrics (``"accuracy"``, ``"mae"``, ``"mse"``, ...)."""
        ignored = {"run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"}
        unknown = sorted(set(kwargs) - ignored - {"weighted_metrics"})
        if unknown:
            raise TypeError(f"compile got the argument(s) {unknown}, which numlstm.keras does not support; it takes "
                            "optimizer, loss and metrics.")
        if kwargs.get("weighted_metrics") or loss_weights is not None:
            raise ValueError("compile(loss_weights=..., weighted_metrics=...) is not supported; numlstm's model "
                             "has one output.")
        plan = self._plan()
        opt = _optimizers.get(optimizer)
        if loss is None:
            raise ValueError("compile needs loss=, e.g. loss='mean_squared_error' or loss='binary_crossentropy'.")
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a Keras loss name such as 'mean_squared_error', got "
                            f"{type(loss).__name__}; custom loss functions are not supported. Names: "
                            f"{sorted(LOSSES)}.")
        name = loss.lower()
        if name not in LOSSES:
            raise ValueError(f"loss {loss!r} is not supported; numlstm.keras has {sorted(LOSSES)}.")
        loss_id, activation, sparse = LOSSES[name]
        dense = plan.dense
        if dense.activation != activation:
            raise ValueError(f"loss={loss!r} needs the last Dense layer to have activation="
                             f"{activation!r}, but {_describe(dense)} has activation={dense.activation!r}; with "
                             f"activation={dense.activation!r} use loss={_LOSS_FOR[dense.activation]}.")
        if activation == "softmax" and dense.units < 2:
            raise ValueError(f"{_describe(dense)} has 1 unit with softmax; give it one unit per class, or use "
                             "Dense(1, activation='sigmoid') with binary_crossentropy.")
        if metrics is None:
            metrics = []
        if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list such as ['accuracy'], got {metrics!r}.")
        for metric in metrics:
            if not isinstance(metric, str):
                raise TypeError(f"metrics must be names such as 'accuracy' or 'mae', got {type(metric).__name__}; "
                                "metric objects and functions are not supported.")
            if metric in ACCURACY_METRICS and activation == "linear":
                raise ValueError(f"metric {metric!r} needs a classification loss (binary_crossentropy or a "
                                 f"categorical one); for loss={loss!r} use 'mae' or 'mse'.")
            if metric not in ACCURACY_METRICS + REGRESSION_METRICS:
                raise ValueError(f"metric {metric!r} is not supported; numlstm.keras has "
                                 f"{list(ACCURACY_METRICS + REGRESSION_METRICS)}.")
        self.optimizer, self.loss = opt, loss
        self.metrics_names = ["loss"] + list(metrics)
        self._compiled = {"loss": name, "loss_id": loss_id, "sparse": sparse, "metrics": list(metrics),
                          "lparams": _losses.Huber().params() if loss_id == _losses.HUBER else np.zeros(1)}
        self._opt_state, self._opt_step = None, 0

    def _require_compiled(self, what):
        if self._compiled is None:
            raise ValueError(f"call model.compile(optimizer=..., loss=...) before {what}.")
        return self._compiled

    # --- data ---------------------------------------------------------------------
    def _inputs(self, x, name="x"):
        """``x`` as the network reads it (float32 (n, time, features) or int64 ids), building the model."""
        plan = self._plan()
        if x is None:
            raise TypeError(f"{name} is None; pass a NumPy array.")
        if plan.text is not None:
            x = plan.text(x)
        if plan.embedding is not None:
            ids = self._ids(x, plan.embedding, name)
            self._require_built("the model")
            return ids[:, ::-1].copy() if plan.go_backwards else ids
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} could not be read as a numeric array ({err}); pass a NumPy array.") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}. Convert it first, e.g. "
                            f"np.asarray({name}, dtype='float32').")
        layer = plan.recurrent[0]
        if arr.ndim != 3:
            fix = (f" Reshape it: {name} = {name}.reshape(({name}.shape[0], {name}.shape[1], 1)) for one feature "
                   "per time step." if arr.ndim == 2 else "")
            raise ValueError(f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}) but {_describe(layer)} reads "
                             f"3-D input (samples, time, features).{fix}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"{name} has shape {arr.shape}; it needs at least one sample and one time step.")
        features = self._features if self._network is not None else plan.features()
        if features is not None and arr.shape[2] != features:
            raise ValueError(f"{name} has {arr.shape[2]} feature(s) per time step (shape {arr.shape}) but the model "
                             f"expects {features} (input_shape {plan.input_shape or (None, features)}).")
        if plan.input_shape is not None and len(plan.input_shape) == 2 and plan.input_shape[0] not in (None,
                                                                                                    arr.shape[1]):
            raise ValueError(f"{name} has {arr.shape[1]} time steps (shape {arr.shape}) but the model's input_shape "
                             f"is {plan.input_shape}; pass windows of {plan.input_shape[0]} steps, or use "
                             "input_shape=(None, features) for any length.")
        arr = np.ascontiguousarray(arr, dtype=DTYPE)
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or infinite values; fill or drop them first.")
        if self._network is None:
            self._build(arr.shape[2])
        return arr[:, ::-1].copy() if plan.go_backwards else arr

    @staticmethod
    def _ids(x, embedding, name):
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} could not be read as token ids ({err}); pad the sequences to one length "
                            "first.") from None
        if arr.dtype.kind == "f" and arr.size and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer token ids for {_describe(embedding)}, got dtype "
                            f"{arr.dtype}. Turn text into ids with a TextVectorization layer.")
        if arr.ndim != 2:
            raise ValueError(f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}); {_describe(embedding)} "
                             "reads (samples, time): one row of token ids per sequence.")
        if arr.size == 0:
            raise ValueError(f"{name} has shape {arr.shape}; it needs at least one sample and one step.")
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= embedding.input_dim:
            bad = low if low < 0 else high
            raise ValueError(f"{name} holds the token id {bad}, outside 0..{embedding.input_dim - 1} of "
                             f"{_describe(embedding)} (input_dim={embedding.input_dim}); make input_dim the "
                             "vocabulary size.")
        arr = arr.astype(np.int64)
        return np.ascontiguousarray(arr if embedding.mask_zero else arr + 1)

    def _targets(self, y, n, name="y"):
        compiled, dense = self._compiled, self._plan_.dense
        try:
            arr = np.asarray(y)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} could not be read as a numeric array ({err}).") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}.")
        if arr.shape[:1] != (n,):
            raise ValueError(f"{name} has {arr.shape[0] if arr.ndim else 0} samples but x has {n}; they must "
                             "match.")
        if compiled["sparse"]:
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1 or (arr.dtype.kind == "f" and not np.all(arr == np.round(arr))):
                raise ValueError(f"{name} must be integer class ids of shape (samples,) for "
                                 f"sparse_categorical_crossentropy, got shape {arr.shape}.")
            codes = arr.astype(np.int64)
            if codes.min() < 0 or codes.max() >= dense.units:
                raise ValueError(f"{name} holds the class id {codes.max() if codes.min() >= 0 else codes.min()}, "
                                 f"outside 0..{dense.units - 1} of {_describe(dense)}.")
            arr = np.eye(dense.units, dtype=DTYPE)[codes]
        elif arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != dense.units:
            hint = (" For class ids use loss='sparse_categorical_crossentropy'."
                    if compiled["loss"] == "categorical_crossentropy" else "")
            raise ValueError(f"{name} has shape {np.shape(y)} but {_describe(dense)} has {dense.units} unit(s); "
                             f"expected ({n}, {dense.units}){' or (samples,)' if dense.units == 1 else ''}.{hint}")
        arr = np.ascontiguousarray(arr, dtype=DTYPE)
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or infinite values.")
        if compiled["loss_id"] in (_losses.BINARY_CE, _losses.CATEGORICAL_CE) and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"{name} holds values outside [0, 1]; {compiled['loss']} needs labels 0/1 (or "
                             "one-hot rows).")
        return arr

    # --- outputs ------------------------------------------------------------------
    def _activate(self, raw):
        activation = self._plan_.dense.activation
        raw = raw.astype(np.float64)
        if activation == "sigmoid":
            return (1.0 / (1.0 + np.exp(-raw))).astype(DTYPE)
        if activation == "softmax":
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            return (e / e.sum(axis=1, keepdims=True)).astype(DTYPE)
        return raw.astype(DTYPE)

    def _metrics(self, P, Y, prefix=""):
        logs = {}
        softmax = self._plan_.dense.activation == "softmax"
        for metric in self._compiled["metrics"]:
            if metric in ACCURACY_METRICS:
                if softmax:
                    value = np.mean(np.argmax(P, axis=1) == np.argmax(Y, axis=1))
                else:
                    value = np.mean((P > 0.5) == (Y > 0.5))
            else:
                err = P.astype(np.float64) - Y
                if metric in ("mae", "mean_absolute_error"):
                    value = np.mean(np.abs(err))
                elif metric in ("mse", "mean_squared_error"):
                    value = np.mean(err ** 2)
                else:
                    value = np.sqrt(np.mean(err ** 2))
            logs[prefix + metric] = float(value)
        return logs

    def _evaluate_arrays(self, X, Y, prefix=""):
        compiled, net = self._compiled, self._network
        ones = np.ones_like(Y)
        logs = {prefix + "loss": float(_engine.dataset_loss(net.params, net.table, net.head, X, Y, ones,
                                                             compiled["loss_id"], compiled["lparams"],
                                                             kernel_threads()))}
        if compiled["metrics"]:
            logs.update(self._metrics(self._activate(_training.predict(net, X)), Y, prefix))
        return logs

    # --- fit, predict, evaluate ----------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Keras' ``fit``: returns a :class:`~numlstm.keras.callbacks.History`.

        Each epoch runs in numlstm's compiled code; ``loss`` is the mean of the
        epoch's batch losses (as Keras reports it), the metrics are computed on
        the training data at the end of the epoch, ``val_`` values on the
        validation data. ``verbose`` 1 and 2 write one line per epoch to the
        ``numlstm.keras`` logger (to stdout when logging is not configured).
        On ``KeyboardInterrupt`` the interrupt propagates and the model keeps the
        last completed epoch's weights (the best ones where an ``EarlyStopping``
        would restore them), optimizer state and ``history``, with a
        :class:`~numlstm.FitInterruptedWarning`.
        """
        compiled = self._require_compiled("fit")
        for arg, value in (("class_weight", class_weight), ("sample_weight", sample_weight),
                           ("steps_per_epoch", steps_per_epoch), ("validation_steps", validation_steps)):
            if value is not None:
                raise ValueError(f"fit({arg}=...) is not supported by numlstm.keras.")
        if validation_freq != 1:
            raise ValueError("fit(validation_freq=...) is not supported; numlstm.keras validates every epoch.")
        if y is None:
            raise TypeError("fit needs y; numlstm.keras takes arrays (x, y), not datasets or generators.")
        X = self._inputs(x)
        Y = self._targets(y, X.shape[0])
        epochs = _int_at_least(epochs, "epochs", 1)
        initial_epoch = _int_at_least(initial_epoch, "initial_epoch", 0)
        batch_size = 32 if batch_size is None else _int_at_least(batch_size, "batch_size", 1)
        verbose = _verbosity(verbose)
        split = float(validation_split)
        if not 0 <= split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}.")
        X_val = Y_val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3) or (
                    len(validation_data) == 3 and validation_data[2] is not None):
                raise TypeError("validation_data must be a tuple (x_val, y_val).")
            X_val = self._inputs(validation_data[0], "validation_data[0]")
            Y_val = self._targets(validation_data[1], X_val.shape[0], "validation_data[1]")
        elif split > 0:
            cut = int(np.floor(X.shape[0] * (1.0 - split)))  # Keras: the last samples, before shuffling
            if cut < 1 or cut == X.shape[0]:
                raise ValueError(f"validation_split={validation_split} of {X.shape[0]} samples leaves "
                                 f"{cut} for training and {X.shape[0] - cut} for validation; both need at least one.")
            X, X_val, Y, Y_val = X[:cut], X[cut:], Y[:cut], Y[cut:]
        hooks = _callback_list(callbacks)
        history = _callbacks.History()
        history.params = {"verbose": verbose, "epochs": epochs, "steps": -(-X.shape[0] // batch_size)}
        hooks.append(history)
        for hook in hooks:
            hook.set_model(self)
        net, opt = self._network, self.optimizer
        if self._opt_state is None:  # the optimizer's moments carry over from one fit to the next, as in Keras
            self._opt_state = np.zeros((2, net.n_params), dtype=DTYPE)
        n = X.shape[0]
        batch_size = min(batch_size, n)
        n_batches = -(-n // batch_size)
        batch_losses = np.zeros(n_batches)
        batch_sizes = np.diff(np.minimum(np.arange(n_batches + 1) * batch_size, n))
        drop = self._plan_.drop
        seed = int(self._rng.integers(2 ** 62)) if drop.any() else 0
        trainer = _training.resolve_engine("cpu").trainer(
            net, X, Y, np.ones_like(Y), batch_size, compiled["loss_id"], compiled["lparams"], opt, 0.0, drop=drop,
            seed=seed)
        trainer.state, trainer.step = self._opt_state, self._opt_step  # the model's own, updated in place
        self.stop_training = False
        record = _KerasRecord(self, hooks, history, initial_epoch, epochs, verbose, n_batches)

        def train(epoch):
            for hook in hooks:
                hook.on_epoch_begin(epoch, {})
            record.started = time.perf_counter()
            # A callback may have changed the optimizer's settings.
            trainer.hp, trainer.clipnorm = opt.hyperparams(), float(getattr(opt, "clipnorm", None) or 0.0)
            order = (self._rng.permutation(n) if shuffle else np.arange(n)).astype(np.int64)
            failed = trainer.epoch(order, batch_losses)
            return float(np.dot(batch_losses, batch_sizes) / n), failed, n_batches

        def evaluate(logs):
            if compiled["metrics"]:
                logs.update(self._metrics(self._activate(_training.predict(net, X)), Y))
            if X_val is not None:
                logs.update(self._evaluate_arrays(X_val, Y_val, "val_"))

        with _console(verbose):
            for hook in hooks:
                hook.on_train_begin({})
            try:
                _training.run_epochs(net, trainer, record, epochs, train, evaluate)
            finally:
                self._opt_step = trainer.step
            for hook in hooks:
                hook.on_train_end({})
        self.history = history
        return history

    def _interrupted(self, done, history, epochs):
        """After Ctrl-C in ``fit``, as the estimators: the weights, optimizer state and history
        of the last completed epoch (the best weights where an EarlyStopping would restore
        them), and a :class:`~numlstm.FitInterruptedWarning`; the caller re-raises."""
        completed, params, state, step, best = done
        self._network.params[:] = params
        self._opt_state[:] = state
        self._opt_step = step
        if best is not None:
            self.set_weights(best)
        del history.epoch[completed:]
        for values in history.history.values():
            del values[completed:]
        self.history = history
        _training.warn_interrupted(completed, epochs, best=best is not None)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs of the Dense layer (its activation applied): float32, (samples, units)."""
        X = self._inputs(x)
        return self._activate(_training.predict(self._network, X))

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss (and the metrics) on ``x, y``: a float, or ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        if sample_weight is not None:
            raise ValueError("evaluate(sample_weight=...) is not supported by numlstm.keras.")
        X = self._inputs(x)
        logs = self._evaluate_arrays(X, self._targets(y, X.shape[0]))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # --- description ------------------------------------------------------------------
    def _shapes_and_counts(self):
        plan = self._plan()
        rows = []
        net = self._network
        time_steps = plan.input_shape[0] if plan.input_shape else None
        size = None if net is None else net.input_size
        for layer in self.layers:
            if layer.kind == "input":
                continue
            if layer.kind == "text":
                rows.append((layer, (None, layer.output_sequence_length), 0))
                time_steps = layer.output_sequence_length
            elif layer.kind == "embedding":
                rows.append((layer, (None, time_steps, layer.output_dim), layer.input_dim * layer.output_dim))
            elif layer.kind == "dropout":
                rows.append((layer, rows[-1][1] if rows else None, 0))
            elif layer.kind == "recurrent":
                H, D = layer.units, plan.directions
                spec = cell_spec(layer.cell)
                count = None if size is None else D * spec.gates * H * (size + H + spec.bias_rows)
                rows.append((layer, (None, time_steps, D * H) if layer.return_sequences else (None, D * H), count))
                size = D * H
            else:
                count = None if size is None else (size + 1) * layer.units
                rows.append((layer, (None, layer.units), count))
        return rows

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Print a table of the layers, their output shapes and weight counts, as Keras."""
        print_fn = print if print_fn is None else print_fn
        rows = self._shapes_and_counts()
        table = [("Layer (type)", "Output Shape", "Param #")]
        for layer, shape, count in rows:
            shape_text = "?" if shape is None else "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1
                                                                                            else "") + ")"
            table.append((f"{layer.name} ({type(layer).__name__})", shape_text,
                          "0 (unbuilt)" if count is None else f"{count:,}"))
        widths = [max(len(row[i]) for row in table) + 2 for i in range(3)]
        rule = "=" * sum(widths)
        lines = [f'Model: "{self.name}"', rule.replace("=", "-")]
        for i, row in enumerate(table):
            lines.append(row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2].rjust(widths[2]))
            if i == 0:
                lines.append(rule)
        total = self.count_params() if self._network is not None else 0
        lines += [rule, f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0",
                  rule.replace("=", "-")]
        for line in lines:
            print_fn(line)

    def get_config(self):
        """The layers' configurations, and the compile settings (what a saved model stores)."""
        config = {"name": self.name,
                  "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                             for layer in self.layers]}
        if self._features is not None:
            config["input_features"] = int(self._features)
        if self._compiled is not None:
            opt = self.optimizer
            config["compile"] = {"loss": self._compiled["loss"], "metrics": self._compiled["metrics"],
                                 "optimizer": {"class_name": type(opt).__name__, "config": _optimizer_config(opt)}}
        return config

    # --- files ------------------------------------------------------------------------
    def save(self, filepath, overwrite=True, **kwargs):
        """Write the model (layers, compile settings, weights) to a ``.nc`` (or ``.zarr``)
        file that :func:`load_model` reads back; nothing is pickled."""
        path = Path(filepath)
        if path.suffix.lower() in (".keras", ".h5", ".hdf5"):
            raise ValueError(f"numlstm.keras saves models as netCDF: use a path ending in .nc (got {path.suffix!r}); "
                             "load_model reads .keras files written by Keras, but numlstm does not write them.")
        if not overwrite and path.exists():
            raise ValueError(f"{str(path)!r} exists and overwrite=False.")
        self._require_built("save")
        write_numlstm_file(path, self.get_config(), self.get_weights(), self._weight_labels())


def _optimizer_config(opt):
    if isinstance(opt, _optimizers.SGD) or type(opt).__name__ == "SGD":
        config = {"learning_rate": opt.learning_rate, "momentum": opt.momentum, "nesterov": opt.nesterov}
    else:
        config = {"learning_rate": opt.learning_rate, "beta_1": opt.beta_1, "beta_2": opt.beta_2,
                  "epsilon": opt.epsilon}
    config["clipnorm"] = getattr(opt, "clipnorm", None)
    return config


def _int_at_least(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0 (silent), 1 or 2 (one line per epoch), got {verbose!r}.")
    return int(verbose)


def _callback_list(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, _callbacks.Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}.")
    for hook in callbacks:
        if not isinstance(hook, _callbacks.Callback):
            module = type(hook).__module__ or ""
            hint = (" It is a Keras callback: use numlstm.keras.callbacks instead."
                    if module.split(".")[0] in ("keras", "tensorflow") else "")
            raise TypeError(f"callbacks must be numlstm.keras.callbacks objects (EarlyStopping, or a subclass of "
                            f"Callback), got {type(hook).__name__}.{hint}")
    return list(callbacks)


class _console:
    """While fitting with ``verbose``, show the ``numlstm.keras`` log lines on stdout
    unless the program configured logging itself."""

    def __init__(self, verbose):
        self.handler = None
        if verbose and not log.hasHandlers():
            self.handler = logging.StreamHandler(sys.stdout)
            self.handler.setFormatter(logging.Formatter("%(message)s"))

    def __enter__(self):
        if self.handler is not None:
            self.level = log.level
            log.addHandler(self.handler)
            log.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        if self.handler is not None:
            log.removeHandler(self.handler)
            log.setLevel(self.level)
        return False


_LAYER_CLASSES = {name: getattr(_layers, name) for name in ("LSTM", "GRU", "Dense", "Dropout", "Embedding",
                                                            "TextVectorization", "InputLayer")}


def _layer_from_config(entry, where):
    """A layer from ``{"class_name", "config"}``, for the classes above only: no code is run."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{where} is not a layer entry {{'class_name': ..., 'config': {{...}}}}.")
    name, config = entry.get("class_name"), dict(entry["config"])
    if name == "Bidirectional":
        config["layer"] = _layer_from_config(config.get("layer"), f"{where} (its wrapped layer)")
        return _layers.Bidirectional(**config)
    if name not in _LAYER_CLASSES:
        raise ValueError(f"{where} is a {name!r} layer, which numlstm.keras does not have; it reads "
                         f"{sorted(_LAYER_CLASSES) + ['Bidirectional']}.")
    try:
        return _LAYER_CLASSES[name](**config)
    except TypeError as err:
        raise ValueError(f"{where} ({name}) has settings numlstm.keras does not read: {err}") from None


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a ``.nc`` file written by :meth:`Sequential.save`, or from a
    ``.keras`` file written by Keras 3 (needs ``h5py``). Files are read as data:
    no code in them is run and nothing is unpickled."""
    if custom_objects:
        raise ValueError("custom_objects is not supported: numlstm.keras runs only its own layers and never code "
                         "from a model file.")
    path = Path(filepath)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        saved = read_keras_file(path)
    elif suffix in (".nc", ".zarr"):
        saved = read_numlstm_file(path)
    elif suffix in (".h5", ".hdf5"):
        raise ValueError(f"{str(path)!r} is a Keras 2 HDF5 model file, which numlstm.keras does not read; save it "
                         "from Keras 3 as .keras (model.save('model.keras')), or move its weights with "
                         "get_weights()/set_weights().")
    else:
        raise ValueError(f"load_model reads .nc files written by numlstm.keras and .keras files written by Keras 3; "
                         f"got {str(path)!r}.")
    config = saved.config
    layers = [_layer_from_config(entry, f"layer {index} of {path.name}")
              for index, entry in enumerate(config.get("layers", []))]
    try:
        model = Sequential(layers, name=config.get("name"))
        model._plan()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path.name} holds a model numlstm.keras cannot run: {err}") from None
    if not model.built:
        model._build(config.get("input_features"))
    try:
        model.set_weights(saved.weights)
    except (TypeError, ValueError) as err:
        message = re.sub(r"weights\[(\d+)\]", lambda m: saved.names[int(m.group(1))], str(err))
        raise ValueError(f"{path.name}: {message}") from None
    if compile and config.get("compile"):
        settings = config["compile"]
        opt = settings.get("optimizer") or {}
        cls = {"Adam": _optimizers.Adam, "SGD": _optimizers.SGD}.get(opt.get("class_name"))
        try:
            if cls is None:
                raise ValueError(f"the optimizer {opt.get('class_name')!r} is not supported (Adam and SGD are)")
            keep = ("learning_rate", "beta_1", "beta_2", "epsilon", "clipnorm", "momentum", "nesterov")
            optimizer = cls(**{k: v for k, v in (opt.get("config") or {}).items() if k in keep})
            model.compile(optimizer=optimizer, loss=settings.get("loss"), metrics=settings.get("metrics") or None)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path.name} was compiled with settings numlstm.keras does not have ({err}); load it "
                             "with load_model(path, compile=False) and call compile.") from None
    return model


class _KerasRecord:
    """What the epoch loop (:func:`numlstm.core.training.run_epochs`) keeps, the Keras way:
    the callbacks see every epoch, an ``EarlyStopping`` callback (not the loop) decides
    when to stop and which weights to restore, ``verbose`` writes Keras' epoch lines,
    and the last completed epoch (weights, optimizer state, the best weights an
    ``EarlyStopping(restore_best_weights=True)`` holds) is what an interrupt keeps."""

    def __init__(self, model, hooks, history, initial_epoch, epochs, verbose, n_batches):
        self.model, self.hooks, self.history = model, hooks, history
        self.initial_epoch, self.epochs, self.verbose, self.n_batches = initial_epoch, epochs, verbose, n_batches
        self.early = [hook for hook in hooks
                      if isinstance(hook, _callbacks.EarlyStopping) and hook.restore_best_weights]
        self.snapshot = None
        self.started = time.perf_counter()

    def _snapshot(self, completed, trainer):
        state, step = trainer.get_optimizer_state()
        best = next((h.best_weights for h in reversed(self.early) if h.best_weights is not None), None)
        return completed, trainer.get_params(), state, step, best

    def start(self, trainer):
        self.snapshot = self._snapshot(0, trainer)[:4] + (None,)
        return self.initial_epoch

    def end_epoch(self, epoch, logs, trainer):
        if self.verbose:
            text = " - ".join(f"{k}: {v:.4f}" if abs(v) > 1e-3 else f"{k}: {v:.4e}"  # as Keras' Progbar
                              for k, v in logs.items())
            log.info("Epoch %d/%d\n%d/%d - %.0fs - %s", epoch + 1, self.epochs, self.n_batches, self.n_batches,
                     time.perf_counter() - self.started, text)
        for hook in self.hooks:
            hook.on_epoch_end(epoch, logs)
        self.snapshot = self._snapshot(epoch + 1 - self.initial_epoch, trainer)
        return self.model.stop_training

    def finish(self, net, trainer):
        """Nothing to do: the weights are the last epoch's, or an EarlyStopping's at ``on_train_end``."""

    def interrupted(self, net, trainer):
        completed, params, state, step, best = self.snapshot
        trainer.set_optimizer_state(state, step)
        self.model._interrupted(self.snapshot, self.history, self.epochs - self.initial_epoch)
