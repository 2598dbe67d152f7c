"""Keras callbacks: ``Callback``, ``History`` and ``EarlyStopping``.

``fit`` calls ``on_train_begin``, then ``on_epoch_begin``/``on_epoch_end`` for
every epoch (``logs`` holds ``loss``, the metrics and their ``val_`` twins), then
``on_train_end``; setting ``model.stop_training = True`` ends the fit after the
current epoch, as in Keras.
"""

from __future__ import annotations

import numpy as np

from numlstm._validation import check_number

__all__ = ["Callback", "History", "EarlyStopping"]


class Callback:
    """Base class, as ``keras.callbacks.Callback``: override the hooks you need."""

    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass


class History(Callback):
    """What ``fit`` returns: ``history`` (``{"loss": [...], "val_loss": [...], ...}``,
    one value per epoch), ``epoch`` (the epoch indices) and ``params``."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []
        self.params = {}

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


_HIGHER_IS_BETTER = ("acc", "accuracy")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs,
    as ``keras.callbacks.EarlyStopping`` (same arguments and defaults: with
    ``restore_best_weights=False`` the model keeps its last weights)."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"EarlyStopping monitor must be a name such as 'val_loss', got {monitor!r}.")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'auto', 'min' or 'max', got {mode!r}.")
        self.monitor = monitor
        self.min_delta = abs(check_number(min_delta, "EarlyStopping min_delta"))
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"EarlyStopping patience must be an int >= 0, got {patience!r}.")
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        if mode == "auto":
            name = monitor[4:] if monitor.startswith("val_") else monitor
            mode = "max" if name in _HIGHER_IS_BETTER or name.endswith("accuracy") else "min"
        self.mode = mode

    def _better(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not log; it logs "
                             f"{sorted(logs)}. Pass validation_split= or validation_data= to fit for 'val_' "
                             "values, or monitor='loss'.")
        current = float(logs[self.monitor])
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._better(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
