"""Array estimators with scikit-learn conventions: LSTMRegressor, LSTMClassifier.

Both build stacked LSTM layers by default, or GRU layers with ``cell="gru"``.

``__init__`` only stores its arguments; ``fit`` validates them and the data
and returns ``self``; fitted state ends in ``_``; ``get_params``/``set_params``
work, so the estimators drop into scikit-learn tools (clone, grid search).
"""

import numpy as np

from numlstm._params import ParamsMixin
from numlstm._validation import (  # noqa: F401 - NotFittedError: also numlstm.estimators.NotFittedError
    NotFittedError,
    check_dropout,
    check_finite,
    check_nonempty,
    check_number,
    check_positive_int,
    check_training_params,
)
from numlstm.core import checkpoint as _checkpoint
from numlstm.core import losses as _losses
from numlstm.core import training as _training
from numlstm.core.network import Network
from numlstm.core.optimizers import LBFGS, make_optimizer


def _sequences(X, dtype, name="X"):
    """Validate ``X`` and return a C-contiguous (samples, time, features) array of ``dtype``."""
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as err:
        raise TypeError(f"{name} could not be read as a numeric array ({err}); pass a NumPy array.") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold numbers (float, int or bool), got dtype {arr.dtype}. "
            f"Convert it first, e.g. np.asarray({name}, dtype=np.float32).")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim != 3:
        hint = " For one series of windows, use X[:, :, None]." if arr.ndim == 1 else ""
        raise ValueError(f"{name} has {arr.ndim} dimension(s); expected (samples, time, features) or "
                         f"(samples, time).{hint}")
    check_nonempty(arr, name)
    # C-contiguous and writable (a read-only user array is copied, never changed): each array type
    # a kernel sees is one more compiled specialisation of the whole training loop.
    arr = np.require(arr, dtype=dtype, requirements=("C", "W"))
    check_finite(arr, name)
    return arr


def _tokens(X, vocabulary=None, name="X"):
    """Validate integer token sequences (samples, time) and return them as int64.

    Token 0 is padding (masked out of the recurrence); ids must be below
    ``vocabulary`` when it is given."""
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as err:
        raise TypeError(f"{name} could not be read as an array of token ids ({err}); pad the sequences to one "
                        "length first, e.g. with numlstm.text.pad.") from None
    if arr.dtype.kind not in "iu":
        hint = (" Encode text with numlstm.text.Vocabulary and pad it with numlstm.text.pad." if arr.dtype.kind in "OUS"
                else " Cast whole-number floats with X.astype(int) if they are ids.")
        raise TypeError(f"{name} must hold integer token ids for a model with embedding_dim, got dtype "
                        f"{arr.dtype}.{hint}")
    if arr.ndim != 2:
        raise ValueError(f"{name} has {arr.ndim} dimension(s); token sequences are (samples, time): one row of "
                         "padded token ids per sequence.")
    check_nonempty(arr, name)
    low, high = int(arr.min()), int(arr.max())
    if low < 0:
        raise ValueError(f"{name} holds the negative token id {low}; ids are 0 (padding), 1 (out of vocabulary) "
                         "and up. numlstm.text.Vocabulary encodes text that way.")
    if vocabulary is not None and high >= vocabulary:
        raise ValueError(f"{name} holds the token id {high} but the embedding has {vocabulary} rows (ids 0 to "
                         f"{vocabulary - 1}); encode new text with the vocabulary used at fit (unknown words map "
                         "to 1), or set vocabulary_size to the vocabulary's size before fit.")
    return np.require(arr, dtype=np.int64, requirements=("C", "W"))


class _LSTMBase(ParamsMixin):
    """Shared knobs, validation and training of the two estimators."""

    def __init__(self, units=50, layers=1, epochs=100, batch_size=32, optimizer="adam", learning_rate=1e-3,
                 loss=None, validation_fraction=0.0, early_stopping=False, patience=10, clipnorm=None,
                 dtype="float32", device="cpu", random_state=None, verbose=0, cell="lstm", dropout=0.0,
                 recurrent_dropout=0.0, bidirectional=False, embedding_dim=None, vocabulary_size=None):
        self.units = units
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.loss = loss
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.clipnorm = clipnorm
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.cell = cell
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.bidirectional = bidirectional
        self.embedding_dim = embedding_dim
        self.vocabulary_size = vocabulary_size

    # --- validation -----------------------------------------------------------
    def _check_params(self):
        """``(units, optimizer, dtype, device, rng)``, checked."""
        optimizer = make_optimizer(self.optimizer, self.learning_rate)
        units, dtype, device, rng = check_training_params(self)
        return units, optimizer, dtype, device, rng

    def _check_fitted(self):
        if not hasattr(self, "network_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X, y) before using it.")

    def _check_X(self, X):
        self._check_fitted()
        if self.network_.vocabulary:
            return _tokens(X, self.network_.vocabulary)
        X = _sequences(X, self.network_.dtype)
        if X.shape[2] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[2]} feature(s) per time step, but this {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}. Pass the same features as in fit.")
        return X

    def _fit_arrays(self, X, Y, M, loss_id, lparams, n_outputs, checkpoint=None, checkpoint_every=1, resume=None):
        units, optimizer, dtype, device, rng = self._check_params()
        checkpoint = _checkpoint.check_target(checkpoint)
        checkpoint_every = _checkpoint.check_every(checkpoint_every)
        resumed = None if resume is None else _checkpoint.read(resume)
        drop = check_dropout(self)
        if not isinstance(self.bidirectional, (bool, np.bool_)):
            raise TypeError(f"bidirectional must be True or False, got {self.bidirectional!r}.")
        if self.embedding_dim is None:
            if self.vocabulary_size is not None:
                raise ValueError("vocabulary_size is set but embedding_dim is None; token sequences need an "
                                 "embedding layer: set embedding_dim (e.g. 32) too.")
            X = _sequences(X, dtype)
            input_size, vocabulary = X.shape[2], 0
        else:
            input_size = check_positive_int(self.embedding_dim, "embedding_dim")
            vocabulary = None if self.vocabulary_size is None else check_positive_int(
                self.vocabulary_size, "vocabulary_size", minimum=2)
            X = _tokens(X, vocabulary)
            if vocabulary is None:
                vocabulary = int(X.max()) + 1
                size = vocabulary * input_size * np.dtype(dtype).itemsize
                if size > 2 ** 30:
                    raise ValueError(
                        f"X's largest token id is {vocabulary - 1}, so the embedding would have {vocabulary} rows "
                        f"({size / 2 ** 30:.1f} GiB); ids should count words from 2 up, as "
                        "numlstm.text.Vocabulary encodes them. Re-encode the tokens, or set vocabulary_size if "
                        "that many rows are really meant.")
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {Y.shape[0]}; they must match, one target "
                             "row per sequence.")
        if (drop.any() or vocabulary) and isinstance(optimizer, LBFGS):
            raise ValueError("optimizer='lbfgs' works on float sequences without dropout; use optimizer='adam' "
                             "(or 'sgd') with dropout or an embedding layer.")
        net = Network(input_size, units, n_outputs, dtype, cell=self.cell, bidirectional=self.bidirectional,
                      vocabulary=vocabulary).initialize(rng)
        self.network_ = net
        self.device_ = device
        self.n_features_in_ = 1 if vocabulary else X.shape[2]
        self.vocabulary_size_ = vocabulary or None
        if resumed is not None:
            if resumed.attrs.get("numlstm_format") != _checkpoint.FORMAT_NAME or \
                    resumed.attrs.get("numlstm_estimator") != type(self).__name__:
                raise ValueError(f"resume {str(resume)!r} is not a checkpoint of a {type(self).__name__} (its "
                                 f"numlstm_format is {resumed.attrs.get('numlstm_format')!r}); resume from the file "
                                 f"a {type(self).__name__}.fit(..., checkpoint=...) wrote.")
            resumed = _checkpoint.state_from_dataset(resumed, net.n_params, net.dtype, resume)
        write = None
        if checkpoint is not None:
            attrs = {"numlstm_format": _checkpoint.FORMAT_NAME, "numlstm_format_version": _checkpoint.FORMAT_VERSION,
                     "numlstm_estimator": type(self).__name__}

            def write(state):
                _checkpoint.write(_checkpoint.state_dataset(state, attrs), checkpoint)

        # Filled epoch by epoch: after an interrupt (Ctrl-C) the model keeps what the completed epochs learned.
        self.history_ = {"loss": []}
        try:
            _training.fit(
                net, X, Y.astype(dtype), M.astype(dtype), epochs=self.epochs, batch_size=self.batch_size,
                loss_id=loss_id, lparams=lparams, optimizer=optimizer, clipnorm=self.clipnorm,
                validation_fraction=self.validation_fraction, early_stopping=self.early_stopping,
                patience=self.patience, rng=rng, verbose=self.verbose, device=device, drop=drop,
                history=self.history_, checkpoint=write, checkpoint_every=checkpoint_every, resume=resumed)
        finally:
            self.n_epochs_ = len(self.history_["loss"])
        return self

    def _raw_predict(self, X):
        X = self._check_X(X)
        return _training.predict(self.network_, X, self.device_)

    # --- weights ----------------------------------------------------------------
    def get_weights(self):
        """Copies of the fitted weights: ``{"cell", "layers": [{"W", "U", "b"}, ...], "head": {"W", "b"}}``.

        ``"cell"`` is ``"lstm"`` or ``"gru"``; a GRU layer's ``W``, ``U`` and
        ``b`` are (input, 3*hidden), (hidden, 3*hidden) and (2, 3*hidden). The
        format :mod:`numlstm.interop` converts to and from PyTorch and Keras
        (pass it the same ``cell=``).
        """
        self._check_fitted()
        return self.network_.get_weights()

    def set_weights(self, weights):
        """Replace the fitted weights (same shapes as :meth:`get_weights`; a ``"cell"``
        entry, when given, must match the model's ``cell``)."""
        self._check_fitted()
        self.network_.set_weights(weights)
        return self


class LSTMRegressor(_LSTMBase):
    """LSTM (or GRU) regressor: sequences in, one value (or several) per sequence out.

    Stacked LSTM layers (GRU layers with ``cell="gru"``) read each sequence; a
    dense layer maps the last hidden state to the targets, as a Keras
    ``Sequential([LSTM(units), Dense(n)])`` (``GRU(units)``).

    Parameters
    ----------
    units : int or list of int, default 50
        Hidden units per layer (one int for all layers, or one per layer).
    layers : int, default 1
        Number of stacked recurrent layers.
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent layer type. ``"gru"`` builds GRU layers as a Keras
        ``GRU`` (``reset_after=True``, its default) or a PyTorch ``nn.GRU``:
        3 gate blocks instead of 4 and two bias rows (input, recurrent).
        Initialised as Keras does: ``W`` glorot-uniform, ``U`` orthogonal,
        biases zero. Everything else (losses, optimizers, L-BFGS,
        ``device="cuda"``, :meth:`get_weights`) works the same.
    dropout : float in [0, 1), default 0.0
        Fraction of each recurrent layer's inputs dropped during training, as
        Keras' ``dropout``: one mask per sequence, reused at every time step,
        drawn anew for every batch from ``random_state``; kept inputs are
        scaled by ``1 / (1 - dropout)``. Off in :meth:`predict`.
    recurrent_dropout : float in [0, 1), default 0.0
        Fraction of the hidden state dropped where it enters the recurrent
        product ``h_{t-1} @ U``, as Keras' ``recurrent_dropout`` (one mask per
        sequence, reused at every step; a GRU's blend ``z * h_{t-1}`` keeps the
        whole state). Off in :meth:`predict`.
    bidirectional : bool, default False
        Every layer reads each sequence forwards and backwards and
        concatenates the two (a Keras ``Bidirectional`` wrapper, concat mode):
        2 * units outputs per step, twice the weights. The dense head sees the
        forward direction's last state and the backward direction's final
        state (at the first time step).
    embedding_dim : int or None, default None
        Read integer token sequences (samples, time) through an embedding
        layer of this many dimensions, trained with the network (Keras'
        ``Embedding(vocabulary_size, embedding_dim, mask_zero=True)``). Token 0
        is padding: padded steps are skipped by the recurrence (the state
        passes through unchanged), so sequences of any length can share one
        padded array, padded at the start or the end. See
        :mod:`numlstm.text` to build the ids from sentences.
    vocabulary_size : int or None, default None
        Rows of the embedding matrix (the largest token id + 1); by default the
        largest id in the data given to ``fit``, plus one.
    epochs : int, default 100
        Passes over the training data (iterations for L-BFGS).
    batch_size : int, default 32
        Samples per gradient step.
    optimizer : {"adam", "sgd", "lbfgs"} or optimizer object, default "adam"
        ``numlstm.optimizers.Adam(...)``, ``SGD(momentum=..., nesterov=...)`` or
        ``LBFGS()`` for full control; Keras defaults otherwise.
    learning_rate : float, default 1e-3
        Used when ``optimizer`` is a name.
    loss : {"mse", "mae", "huber", "pinball", "gaussian_nll"} or loss object, default "mse"
        ``numlstm.losses.Huber(delta)`` and ``numlstm.losses.Pinball(quantiles)``
        take parameters. With pinball, :meth:`predict` returns one column per
        quantile; with gaussian_nll it can return the standard deviation too.
        NaN targets are masked out of the loss.
    validation_fraction : float, default 0.0
        Last fraction of the samples held out for ``val_loss`` (as Keras'
        ``validation_split``: not shuffled).
    early_stopping : bool, default False
        Stop when the monitored loss (``val_loss`` if validating, else
        ``loss``) has not improved for ``patience`` epochs, and restore the best
        weights.
    patience : int, default 10
    clipnorm : float or None
        Clip the gradient to this global norm.
    dtype : {"float32", "float64"}, default "float32"
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Where to train and predict: ``"cuda"`` on an NVIDIA GPU (weights,
        optimizer state and data stay on the device during ``fit``),
        ``"auto"`` on the GPU when one is usable. L-BFGS runs on the CPU only.
    random_state : int, Generator or None
        Seeds initialisation and shuffling. The same seed gives identical
        predictions on the same machine and thread count.
    verbose : {0, 1, 2}, default 0
        0 silent, 1 a progress bar, 2 one log line per epoch (logger
        ``"numlstm"``).

    Attributes
    ----------
    network_ : numlstm.core.network.Network
        The fitted network (weights in ``network_.params``).
    history_ : dict
        Per-epoch ``"loss"`` and, when validating, ``"val_loss"``.
    n_features_in_ : int
    n_outputs_ : int
    device_ : {"cpu", "cuda"}
        Where the model was fitted and predicts.
    n_epochs_ : int
        Epochs actually run (fewer than ``epochs`` after early stopping).
    vocabulary_size_ : int or None
        Rows of the embedding matrix (None without ``embedding_dim``).

    Examples
    --------
    >>> import numpy as np, numlstm
    >>> t = np.arange(300, dtype=np.float32)
    >>> series = np.sin(t / 8)
    >>> X = np.stack([series[i:i + 12] for i in range(280)])   # (samples, time)
    >>> y = series[12:292]
    >>> model = numlstm.LSTMRegressor(units=16, epochs=30, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    >>> bool(np.sqrt(np.mean((model.predict(X) - y) ** 2)) < 0.2)
    True
    >>> gru = numlstm.LSTMRegressor(units=16, epochs=2, random_state=0, cell="gru").fit(X, y)
    >>> gru.get_weights()["layers"][0]["U"].shape, gru.get_weights()["layers"][0]["b"].shape
    ((16, 48), (2, 48))
    """

    def __init__(self, units=50, layers=1, epochs=100, batch_size=32, optimizer="adam", learning_rate=1e-3,
                 loss="mse", validation_fraction=0.0, early_stopping=False, patience=10, clipnorm=None,
                 dtype="float32", device="cpu", random_state=None, verbose=0, cell="lstm", dropout=0.0,
                 recurrent_dropout=0.0, bidirectional=False, embedding_dim=None, vocabulary_size=None):
        super().__init__(units=units, layers=layers, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                         learning_rate=learning_rate, loss=loss, validation_fraction=validation_fraction,
                         early_stopping=early_stopping, patience=patience, clipnorm=clipnorm, dtype=dtype,
                         device=device, random_state=random_state, verbose=verbose, cell=cell, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, bidirectional=bidirectional,
                         embedding_dim=embedding_dim, vocabulary_size=vocabulary_size)

    def _loss_spec(self):
        loss = self.loss
        if isinstance(loss, (_losses.Huber, _losses.Pinball)):
            lparams = loss.params()
            if loss.name == "huber":
                check_number(loss.delta, "Huber(delta)", low=0, low_open=True)
            else:
                q = lparams
                if q.ndim != 1 or q.size == 0 or not ((q > 0) & (q < 1)).all():
                    raise ValueError(f"Pinball quantiles must be numbers strictly between 0 and 1, got "
                                     f"{loss.quantiles!r}.")
            return _losses.NAMES[loss.name], lparams
        allowed = ("mse", "mae", "huber", "pinball", "gaussian_nll")
        if not isinstance(loss, str) or loss.lower() not in allowed:
            raise ValueError(f"loss must be one of {allowed} or numlstm.losses.Huber/Pinball, got {loss!r}.")
        loss = loss.lower()
        default = {"huber": _losses.Huber(), "pinball": _losses.Pinball()}.get(loss)
        return _losses.NAMES[loss], default.params() if default is not None else np.zeros(1)

    def fit(self, X, y, *, checkpoint=None, checkpoint_every=1, resume=None):
        """Fit to sequences ``X`` (samples, time[, features]) and targets ``y`` (samples[, outputs]).

        NaN in ``y`` is masked out of the loss; NaN or inf in ``X`` is an error.
        Returns ``self``.

        ``checkpoint="run.nc"`` writes the training state (weights, optimizer
        state, epoch, random generator, history) to that file, atomically,
        every ``checkpoint_every`` epochs and when the fit is interrupted;
        ``resume="run.nc"`` continues such a fit, with the same parameters and
        data, to the result the uninterrupted fit would have had (on the CPU:
        the same numbers). Ctrl-C (``KeyboardInterrupt``) propagates and leaves
        the model fitted with the last completed epoch's weights (the best
        ones under early stopping) and ``history_``.
        """
        loss_id, lparams = self._loss_spec()
        try:
            Y = np.asarray(y)
        except (ValueError, TypeError) as err:
            raise TypeError(f"y could not be read as a numeric array ({err}).") from None
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"y must hold numbers, got dtype {Y.dtype}. Convert it, e.g. np.asarray(y, float).")
        if Y.ndim not in (1, 2):
            raise ValueError(f"y has {Y.ndim} dimension(s); expected (samples,) or (samples, outputs).")
        check_nonempty(Y, "y")
        self._y_1d = Y.ndim == 1
        Y = Y.reshape(Y.shape[0], -1).astype(np.float64)
        if np.isinf(Y).any():
            raise ValueError("y contains infinite values; targets must be finite (NaN targets are masked).")
        M = np.isfinite(Y)
        if not M.any():
            raise ValueError("y has no finite target: every value is NaN, so there is nothing to learn from.")
        Y = np.where(M, Y, 0.0)
        self.n_outputs_ = Y.shape[1]
        n_net = self.n_outputs_ * _losses.outputs_per_target(loss_id, lparams.size)
        self._loss_id = loss_id
        self._lparams = lparams
        return self._fit_arrays(X, Y, M, loss_id, lparams, n_net, checkpoint, checkpoint_every, resume)

    def predict(self, X, return_std=False):
        """Predictions for sequences ``X``.

        Shape ``(samples,)`` if ``y`` was 1-D at fit, else ``(samples, outputs)``;
        with a pinball loss a last axis of quantiles is added. With
        ``return_std=True`` (gaussian_nll only) returns ``(mean, std)``.
        """
        raw = self._raw_predict(X)
        n, O = raw.shape[0], self.n_outputs_
        if self._loss_id == _losses.PINBALL:
            Q = self._lparams.size
            out = np.sort(raw.reshape(n, O, Q), axis=-1)  # quantiles never cross
            return out[:, 0, :] if self._y_1d else out
        std = None
        if self._loss_id == _losses.GAUSSIAN_NLL:
            std = np.exp(0.5 * raw[:, O:])
            raw = raw[:, :O]
        mean = raw[:, 0] if self._y_1d else raw
        if return_std:
            if std is None:
                raise ValueError("return_std=True needs loss='gaussian_nll', which learns a variance; this model "
                                 f"was fitted with loss={self.loss!r}.")
            return mean, (std[:, 0] if self._y_1d else std)
        return mean


class LSTMClassifier(_LSTMBase):
    """LSTM (or GRU) classifier: one label per sequence.

    Two classes use one sigmoid output and binary cross-entropy; more use a
    softmax and categorical cross-entropy (as Keras would be set up). Labels
    may be any sortable values; ``classes_`` holds them.

    Parameters are those of :class:`LSTMRegressor` (``cell="gru"`` for GRU
    layers included), except ``loss`` (``"auto"`` or the matching
    ``"binary_crossentropy"``/``"categorical_crossentropy"``).

    Examples
    --------
    >>> import numpy as np, numlstm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 10)).astype(np.float32)
    >>> y = np.where(X.sum(axis=1) > 0, "up", "down")
    >>> clf = numlstm.LSTMClassifier(units=8, epochs=40, random_state=0).fit(X, y)
    >>> clf.classes_.tolist()
    ['down', 'up']
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool((clf.predict(X) == y).mean() > 0.9)
    True
    """

    def __init__(self, units=50, layers=1, epochs=100, batch_size=32, optimizer="adam", learning_rate=1e-3,
                 loss="auto", validation_fraction=0.0, early_stopping=False, patience=10, clipnorm=None,
                 dtype="float32", device="cpu", random_state=None, verbose=0, cell="lstm", dropout=0.0,
                 recurrent_dropout=0.0, bidirectional=False, embedding_dim=None, vocabulary_size=None):
        super().__init__(units=units, layers=layers, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                         learning_rate=learning_rate, loss=loss, validation_fraction=validation_fraction,
                         early_stopping=early_stopping, patience=patience, clipnorm=clipnorm, dtype=dtype,
                         device=device, random_state=random_state, verbose=verbose, cell=cell, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, bidirectional=bidirectional,
                         embedding_dim=embedding_dim, vocabulary_size=vocabulary_size)

    def fit(self, X, y, *, checkpoint=None, checkpoint_every=1, resume=None):
        """Fit to sequences ``X`` (samples, time[, features]) and labels ``y`` (samples,). Returns ``self``.

        ``checkpoint``, ``checkpoint_every`` and ``resume`` as in :meth:`LSTMRegressor.fit`."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y has shape {y.shape}; expected (samples,), one label per sequence.")
        check_nonempty(y, "y")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinite labels; every sequence needs a label.")
        if y.dtype.kind == "O":
            raise TypeError("y has object dtype; pass labels as a NumPy array of numbers or strings.")
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y has a single class ({classes[0]!r}); a classifier needs at least two.")
        expected = "binary_crossentropy" if classes.size == 2 else "categorical_crossentropy"
        if self.loss not in ("auto", expected):
            raise ValueError(f"loss must be 'auto' or {expected!r} for {classes.size} classes, got {self.loss!r}.")
        self.classes_ = classes
        if classes.size == 2:
            Y = codes[:, None].astype(np.float64)
            loss_id = _losses.BINARY_CE
        else:
            Y = np.eye(classes.size)[codes]
            loss_id = _losses.CATEGORICAL_CE
        self._loss_id = loss_id
        return self._fit_arrays(X, Y, np.ones_like(Y), loss_id, np.zeros(1), Y.shape[1], checkpoint,
                                checkpoint_every, resume)

    def predict_proba(self, X):
        """Class probabilities, shape (samples, classes), columns in ``classes_`` order."""
        raw = self._raw_predict(X).astype(np.float64)
        if self._loss_id == _losses.BINARY_CE:
            p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        raw -= raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class of each sequence."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
