"""The Keras layers that numlstm's network can express, with Keras' arguments.

A layer here only stores its arguments (checked when it is made, so a wrong
value fails on the line that wrote it); :class:`numlstm.keras.models.Sequential`
reads them and builds one numlstm network: an optional ``TextVectorization``
and ``Embedding``, recurrent layers (``LSTM`` or ``GRU``, each wrapped in
``Bidirectional`` or none), then one ``Dense`` layer.

Layers Keras has and numlstm does not (``Conv1D``, ``Lambda``, ``Flatten``,
``TimeDistributed``, ...) can still be imported from here, so that a tutorial
reaches the line that uses them; adding one to a model raises a ValueError
that names the layer and what is supported.
"""

from __future__ import annotations

import re

import numpy as np

from numlstm._validation import check_number, check_positive_int

__all__ = ["LSTM", "GRU", "Dense", "Dropout", "Embedding", "Bidirectional", "TextVectorization", "Input",
           "InputLayer", "Layer"]

SUPPORTED = ("Input", "TextVectorization", "Embedding", "LSTM", "GRU", "Bidirectional", "Dense")
STACK = ("[Input], [TextVectorization], [Embedding], then LSTM or GRU layers (all of one kind, all wrapped in "
         "Bidirectional or none), then one Dense layer")

_names = {}


def _auto_name(kind):
    """Keras-style default names: ``lstm``, ``lstm_1``, ... (one counter per kind and process)."""
    count = _names.get(kind, 0)
    _names[kind] = count + 1
    return kind if count == 0 else f"{kind}_{count}"


def snake_case(name):
    """A class name as Keras writes it in layer names and weight files: ``TextVectorization``
    -> ``text_vectorization``, ``LSTM`` -> ``lstm``, ``Conv1D`` -> ``conv1d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_kwargs(layer, kwargs, allowed=()):
    """Keras' common keyword arguments, and a TypeError for any other one."""
    known = {"name", "input_shape", "input_dim", "batch_input_shape", "dtype", "trainable"} | set(allowed)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"{layer} got the argument(s) {unknown}, which numlstm.keras does not support; it takes "
                        f"{sorted(known)}.")
    dtype = kwargs.get("dtype")
    if dtype not in (None, "float32"):
        raise ValueError(f"{layer}(dtype={dtype!r}) is not supported; numlstm.keras models are float32.")
    if kwargs.get("trainable", True) is not True:
        raise ValueError(f"{layer}(trainable=False) is not supported; every layer of a numlstm.keras model is "
                         "trained.")


class Layer:
    """Base of the layers: a name, an optional input shape, and Keras' ``get_config``."""

    kind = "layer"

    def __init__(self, name=None, input_shape=None, input_dim=None, batch_input_shape=None, **_):
        self.name = _auto_name(snake_case(type(self).__name__)) if name is None else str(name)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_dim is not None and input_shape is None:
            input_shape = (check_positive_int(input_dim, "input_dim"),)
        self.input_shape = None if input_shape is None else _shape(input_shape, f"{type(self).__name__} input_shape")

    def _config(self):
        return {}

    def get_config(self):
        """The layer's arguments, as Keras' ``get_config`` (what a saved model stores)."""
        config = {"name": self.name, **self._config()}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"<{type(self).__name__} {self.name!r}{': ' + args if args else ''}>"


def _shape(shape, label):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{label} must be a tuple such as (time, features), got {shape!r}.") from None
    if not shape or any(s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1)
                        for s in shape):
        raise ValueError(f"{label} must be a tuple of positive ints (None for any length), such as (time, "
                         f"features), got {shape!r}.")
    return tuple(None if s is None else int(s) for s in shape)


class InputLayer(Layer):
    """The input's shape per sample, without the batch axis: ``(time, features)``,
    or ``(time,)`` for token ids; ``dtype="string"`` for text into a
    ``TextVectorization`` layer."""

    kind = "input"

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=None,
                 **kwargs):
        if batch_shape is not None and shape is None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise TypeError("Input needs shape=, the shape of one sample without the batch axis, e.g. "
                            "Input(shape=(look_back, 1)).")
        if sparse:
            raise ValueError("Input(sparse=True) is not supported by numlstm.keras.")
        unknown = sorted(set(kwargs) - {"ragged", "optional", "tensor"})
        if unknown:
            raise TypeError(f"Input got the argument(s) {unknown}, which numlstm.keras does not support; it takes "
                            "shape, batch_size, dtype and name.")
        super().__init__(name=name, input_shape=shape if shape != () else None)
        if self.input_shape is None:
            raise ValueError("Input(shape=()) is a scalar per sample; recurrent layers read sequences: "
                             "shape=(time, features), or (time,) for token ids.")
        self.dtype = dtype

    def _config(self):
        return {"shape": list(self.input_shape), "dtype": self.dtype}

    def get_config(self):
        return {"name": self.name, **self._config()}


def Input(shape=None, batch_size=None, dtype=None, name=None, **kwargs):
    """``keras.Input``: the shape of one sample, e.g. ``Input(shape=(look_back, 1))``."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, **kwargs)


_RNN_ARGS = ("kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias",
             "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
             "kernel_constraint", "recurrent_constraint", "bias_constraint", "seed", "unroll", "use_cudnn")
_DEFAULT_INIT = {"kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
                 "bias_initializer": "zeros", "unit_forget_bias": True, "unroll": False, "use_cudnn": "auto",
                 "seed": None}


class _Recurrent(Layer):
    cell = None

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, **kwargs):
        layer = type(self).__name__
        _check_kwargs(layer, kwargs, _RNN_ARGS + ("reset_after",))
        self.units = check_positive_int(units, f"{layer} units")
        for arg, value, default in (("activation", activation, "tanh"),
                                    ("recurrent_activation", recurrent_activation, "sigmoid")):
            if value != default:
                raise ValueError(f"{layer}({arg}={value!r}) is not supported; numlstm's {layer} cell uses "
                                 f"{arg}={default!r} (the Keras default).")
        for arg, value, fix in (("use_bias", use_bias, True), ("return_state", return_state, False),
                                ("stateful", stateful, False)):
            if bool(value) != fix:
                raise ValueError(f"{layer}({arg}={value!r}) is not supported by numlstm.keras; use the default "
                                 f"{arg}={fix!r}.")
        for arg in ("kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias"):
            if arg in kwargs and kwargs[arg] != _DEFAULT_INIT[arg]:
                raise ValueError(f"{layer}({arg}={kwargs[arg]!r}) is not supported; numlstm initialises as "
                                 f"Keras' defaults ({arg}={_DEFAULT_INIT[arg]!r}). Set other weights with "
                                 "model.set_weights.")
        for arg in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                    "kernel_constraint", "recurrent_constraint", "bias_constraint"):
            if kwargs.get(arg) is not None:
                raise ValueError(f"{layer}({arg}=...) is not supported by numlstm.keras; regularizers and "
                                 "constraints are not part of its network.")
        if self.cell == "gru" and kwargs.get("reset_after", True) is not True:
            raise ValueError("GRU(reset_after=False) is not supported; numlstm's GRU is Keras' default "
                             "reset_after=True (a bias of shape (2, 3*units)).")
        self.dropout = check_number(dropout, f"{layer} dropout", low=0, high=1, high_open=True)
        self.recurrent_dropout = check_number(recurrent_dropout, f"{layer} recurrent_dropout", low=0, high=1,
                                              high_open=True)
        self.return_sequences = bool(return_sequences)
        self.go_backwards = bool(go_backwards)
        super().__init__(**kwargs)

    def _config(self):
        return {"units": self.units, "return_sequences": self.return_sequences, "go_backwards": self.go_backwards,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}


class LSTM(_Recurrent):
    """``keras.layers.LSTM``: ``units``, ``return_sequences`` (True on every layer but
    the last, to stack), ``dropout``, ``recurrent_dropout`` and ``go_backwards``
    (on a model's only recurrent layer)."""

    kind = "recurrent"
    cell = "lstm"


class GRU(_Recurrent):
    """``keras.layers.GRU`` (``reset_after=True``, Keras' default); arguments as :class:`LSTM`."""

    kind = "recurrent"
    cell = "gru"


class Bidirectional(Layer):
    """``keras.layers.Bidirectional`` around an LSTM or GRU, ``merge_mode="concat"``."""

    kind = "recurrent"

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        _check_kwargs("Bidirectional", kwargs)
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional wraps an LSTM or GRU layer of numlstm.keras.layers, got "
                            f"{type(layer).__name__}.")
        if merge_mode != "concat":
            raise ValueError(f"Bidirectional(merge_mode={merge_mode!r}) is not supported; numlstm concatenates "
                             "the two directions (merge_mode='concat', the Keras default).")
        if backward_layer is not None:
            raise ValueError("Bidirectional(backward_layer=...) is not supported; the backward direction is a "
                             "copy of the layer, as Keras makes it by default.")
        if layer.go_backwards:
            raise ValueError("Bidirectional of a layer with go_backwards=True is not supported; wrap a layer that "
                             "reads forwards.")
        self.layer = layer
        if kwargs.get("input_shape") is None and layer.input_shape is not None:
            kwargs["input_shape"] = layer.input_shape
        super().__init__(**kwargs)

    # The wrapped layer's settings, read by the model as those of a recurrent layer.
    cell = property(lambda self: self.layer.cell)
    units = property(lambda self: self.layer.units)
    return_sequences = property(lambda self: self.layer.return_sequences)
    go_backwards = property(lambda self: False)
    dropout = property(lambda self: self.layer.dropout)
    recurrent_dropout = property(lambda self: self.layer.recurrent_dropout)

    def _config(self):
        return {"layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}}


ACTIVATIONS = (None, "linear", "sigmoid", "softmax")


class Dense(Layer):
    """``keras.layers.Dense``, the model's output layer: linear, ``"sigmoid"`` (with
    ``binary_crossentropy``) or ``"softmax"`` (with a categorical cross-entropy)."""

    kind = "dense"

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        _check_kwargs("Dense", kwargs, ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                                        "bias_regularizer", "activity_regularizer", "kernel_constraint",
                                        "bias_constraint", "lora_rank", "lora_alpha"))
        self.units = check_positive_int(units, "Dense units")
        if callable(activation):
            activation = getattr(activation, "__name__", activation)
        if activation not in ACTIVATIONS:
            raise ValueError(f"Dense(activation={activation!r}) is not supported: numlstm's network ends in one "
                             "Dense layer, linear (for mse, mae, huber), 'sigmoid' (for binary_crossentropy) or "
                             "'softmax' (for categorical_crossentropy). Hidden Dense layers are not part of it.")
        if not use_bias:
            raise ValueError("Dense(use_bias=False) is not supported; numlstm's Dense layer has a bias.")
        for arg in ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                    "bias_constraint", "lora_rank"):
            if kwargs.get(arg) is not None:
                raise ValueError(f"Dense({arg}=...) is not supported by numlstm.keras.")
        self.activation = "linear" if activation is None else activation
        super().__init__(**kwargs)

    def _config(self):
        return {"units": self.units, "activation": self.activation}


class Dropout(Layer):
    """``keras.layers.Dropout(rate)``, in training only: every element of its input is
    zeroed with probability ``rate`` and the rest scaled by ``1 / (1 - rate)``.

    It may stand before a recurrent layer (after Embedding, or between recurrent
    layers; a new mask at every step, as Keras, shared by a Bidirectional layer's
    two directions) or before the Dense layer. Consecutive Dropout layers combine.
    ``noise_shape`` must be None (Keras' default); ``seed`` is accepted and not
    used: masks come from the model's own seeded generator."""

    kind = "dropout"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        _check_kwargs("Dropout", kwargs)
        self.rate = check_number(rate, "Dropout rate", low=0, high=1, high_open=True)
        if noise_shape is not None:
            raise ValueError(f"Dropout(noise_shape={noise_shape!r}) is not supported by numlstm.keras: a Dropout "
                             "layer draws a mask per element (noise_shape=None). For one mask per sequence on a "
                             "recurrent layer's inputs use its own dropout= argument, e.g. LSTM(units, dropout=0.2).")
        super().__init__(**kwargs)

    def _config(self):
        return {"rate": self.rate}


class Embedding(Layer):
    """``keras.layers.Embedding(input_dim, output_dim, mask_zero=False)``: token ids
    ``0 .. input_dim - 1`` to vectors. With ``mask_zero=True`` id 0 is padding,
    skipped by the recurrent layers."""

    kind = "embedding"

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False,
                 input_length=None, **kwargs):
        _check_kwargs("Embedding", kwargs, ("embeddings_regularizer", "embeddings_constraint",
                                            "activity_regularizer", "weights", "lora_rank", "sparse"))
        self.input_dim = check_positive_int(input_dim, "Embedding input_dim", minimum=2 if mask_zero else 1)
        self.output_dim = check_positive_int(output_dim, "Embedding output_dim")
        self.mask_zero = bool(mask_zero)
        if embeddings_initializer not in ("uniform", "random_uniform"):
            raise ValueError(f"Embedding(embeddings_initializer={embeddings_initializer!r}) is not supported; "
                             "numlstm initialises as Keras' default, uniform in [-0.05, 0.05].")
        if kwargs.get("weights") is not None:
            raise ValueError("Embedding(weights=...) is not supported; build the model and call "
                             "model.set_weights (the embedding matrix comes first).")
        for arg in ("embeddings_regularizer", "embeddings_constraint", "activity_regularizer", "lora_rank"):
            if kwargs.get(arg) is not None:
                raise ValueError(f"Embedding({arg}=...) is not supported by numlstm.keras.")
        if input_length is not None and kwargs.get("input_shape") is None:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)

    def _config(self):
        return {"input_dim": self.input_dim, "output_dim": self.output_dim, "mask_zero": self.mask_zero}


_PUNCTUATION = re.compile(r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~']")


class TextVectorization(Layer):
    """``keras.layers.TextVectorization`` with ``output_mode="int"``: strings to token ids.

    ``standardize="lower_and_strip_punctuation"`` (or ``"lower"``,
    ``"strip_punctuation"``, None), ``split="whitespace"`` or ``"character"``,
    ``max_tokens`` (padding and ``[UNK]`` included), ``output_sequence_length``
    (pads with 0 or truncates at the end; without it, to the longest text of
    the call). Build the vocabulary with :meth:`adapt`: id 0 is padding, 1
    ``[UNK]``, then tokens from the most frequent (ties in order of first
    appearance). Called on a list of strings, returns an int64 array.
    """

    kind = "text"

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace",
                 output_mode="int", output_sequence_length=None, vocabulary=None, **kwargs):
        _check_kwargs("TextVectorization", kwargs, ("ngrams", "pad_to_max_tokens", "encoding"))
        if output_mode != "int":
            raise ValueError(f"TextVectorization(output_mode={output_mode!r}) is not supported; numlstm reads "
                             "token ids: output_mode='int'.")
        if kwargs.get("ngrams") is not None:
            raise ValueError("TextVectorization(ngrams=...) is not supported by numlstm.keras.")
        if standardize not in ("lower_and_strip_punctuation", "lower", "strip_punctuation", None):
            raise ValueError(f"TextVectorization(standardize={standardize!r}) is not supported; use "
                             "'lower_and_strip_punctuation', 'lower', 'strip_punctuation' or None.")
        if split not in ("whitespace", "character"):
            raise ValueError(f"TextVectorization(split={split!r}) is not supported; use 'whitespace' or "
                             "'character'.")
        self.max_tokens = None if max_tokens is None else check_positive_int(max_tokens, "max_tokens", minimum=3)
        self.standardize, self.split = standardize, split
        self.output_sequence_length = (None if output_sequence_length is None else
                                       check_positive_int(output_sequence_length, "output_sequence_length"))
        self._vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        super().__init__(**{k: v for k, v in kwargs.items() if k not in ("pad_to_max_tokens", "encoding")})

    def _tokens(self, text):
        if self.standardize in ("lower_and_strip_punctuation", "lower"):
            text = text.lower()
        if self.standardize in ("lower_and_strip_punctuation", "strip_punctuation"):
            text = _PUNCTUATION.sub("", text)
        return list(text) if self.split == "character" else text.split()

    @staticmethod
    def _texts(data, name):
        if isinstance(data, str):
            raise TypeError(f"{name} must be a list of strings, got one string; wrap it: [text].")
        arr = np.asarray(data, dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D list of strings, got an array of shape {arr.shape}.")
        texts = [t.decode() if isinstance(t, bytes) else t for t in arr.tolist()]
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"{name} must hold strings, got {type(bad).__name__} {bad!r}.")
        return texts

    def adapt(self, data):
        """Build the vocabulary from ``data``, a list (or array) of strings."""
        counts = {}
        for text in self._texts(data, "TextVectorization.adapt data"):
            for token in self._tokens(text):
                counts[token] = counts.get(token, 0) + 1
        ranked = sorted(counts, key=lambda t: -counts[t])  # stable: ties keep their first appearance
        if self.max_tokens is not None:
            ranked = ranked[:self.max_tokens - 2]
        self.set_vocabulary(ranked)

    def set_vocabulary(self, vocabulary):
        """Use ``vocabulary`` (a list of tokens, most frequent first; without ``""`` and ``"[UNK]"``)."""
        tokens = [str(t) for t in vocabulary]
        if tokens[:2] == ["", "[UNK]"]:
            tokens = tokens[2:]
        self._vocabulary = tokens
        self._ids = {t: i + 2 for i, t in enumerate(tokens)}

    def get_vocabulary(self):
        """``["", "[UNK]", token, ...]``: the token of each id, as Keras returns it."""
        self._check_adapted()
        return ["", "[UNK]"] + list(self._vocabulary)

    def vocabulary_size(self):
        self._check_adapted()
        return len(self._vocabulary) + 2

    def _check_adapted(self):
        if self._vocabulary is None:
            raise ValueError(f"TextVectorization {self.name!r} has no vocabulary yet; call layer.adapt(texts) "
                             "(or set_vocabulary) before using it.")

    def __call__(self, data):
        self._check_adapted()
        rows = [[self._ids.get(t, 1) for t in self._tokens(text)] for text in self._texts(data, "the input")]
        length = self.output_sequence_length or max((len(r) for r in rows), default=1) or 1
        out = np.zeros((len(rows), length), dtype=np.int64)
        for i, row in enumerate(rows):
            row = row[:length]
            out[i, :len(row)] = row
        return out

    def _config(self):
        return {"max_tokens": self.max_tokens, "standardize": self.standardize, "split": self.split,
                "output_sequence_length": self.output_sequence_length,
                "vocabulary": None if self._vocabulary is None else list(self._vocabulary)}


class Unsupported(Layer):
    """A Keras layer numlstm's network has no counterpart for; a model refuses it."""

    kind = "unsupported"

    def __init__(self, *args, **kwargs):
        super().__init__(name=kwargs.get("name"))


# Keras layers that tutorials use around LSTMs, importable so that the error comes where the model is built.
_KERAS_ONLY = ("Conv1D", "Conv2D", "ConvLSTM1D", "ConvLSTM2D", "MaxPooling1D", "AveragePooling1D",
               "GlobalMaxPooling1D", "GlobalAveragePooling1D", "Flatten", "Reshape", "Permute", "RepeatVector",
               "TimeDistributed", "Lambda", "SimpleRNN", "RNN", "Attention", "MultiHeadAttention",
               "BatchNormalization", "LayerNormalization", "Activation", "Masking", "Concatenate", "Add",
               "SpatialDropout1D", "GaussianNoise", "LeakyReLU", "ReLU", "StringLookup", "IntegerLookup",
               "Normalization")


def __getattr__(name):
    if name in _KERAS_ONLY:
        cls = type(name, (Unsupported,), {"__doc__": f"Keras' {name}: not supported by numlstm.keras.",
                                          "__module__": __name__})
        globals()[name] = cls
        return cls
    raise AttributeError(f"module 'numlstm.keras.layers' has no attribute {name!r}; it has "
                         f"{', '.join(SUPPORTED)} (and Dropout).")
