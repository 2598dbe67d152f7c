"""Keras model code, run by numlstm: change the imports, keep the program.

>>> from numlstm.keras.models import Sequential          # was: from keras.models import Sequential
>>> from numlstm.keras.layers import LSTM, Dense         # was: from keras.layers import LSTM, Dense
>>> model = Sequential([LSTM(50, input_shape=(3, 1)), Dense(1)])
>>> model.compile(optimizer="adam", loss="mean_squared_error")

``Sequential`` (:mod:`numlstm.keras.models`), the layers numlstm's network
expresses (:mod:`numlstm.keras.layers`: ``LSTM``, ``GRU``, ``Bidirectional``,
``Dense``, ``Embedding``, ``TextVectorization``, ``Input``), ``EarlyStopping``
(:mod:`numlstm.keras.callbacks`), ``Adam`` and ``SGD``
(:mod:`numlstm.keras.optimizers`), and ``load_model``, which also reads
``.keras`` files written by Keras 3. What the network cannot express raises a
ValueError naming the layer and what is supported.
"""

from numlstm.keras import callbacks, layers, models, optimizers, utils
from numlstm.keras.layers import Input
from numlstm.keras.models import Sequential, load_model

__all__ = ["Input", "Sequential", "callbacks", "layers", "load_model", "models", "optimizers", "utils"]
