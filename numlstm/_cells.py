"""The recurrent cells numlstm runs: one :class:`CellSpec` per cell, which everything else reads.

The flat parameter layout (:mod:`numlstm.core.network`), the initialisation,
the argument checks of the functional layers, the PyTorch/Keras weight
conversions (:mod:`numlstm.interop`), the model file (:mod:`numlstm.forecast.modelfile`)
and ``numlstm.keras`` take a cell's gate count, gate order, bias layout and
names from here. A cell's kernels are entered, under its ``key``, in each
engine's kernel table (``numlstm.core.cpu_engine._LAYERS``,
``numlstm.core.gpu.Trainer``), which sit floors above this one; see
docs/contributing.md ("A new cell").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CELLS", "CellSpec", "NAMES", "cell_spec"]


@dataclass(frozen=True)
class CellSpec:
    """What differs between recurrent cells, for every part of numlstm that is not a kernel."""

    key: str  # the ``cell=`` value
    name: str  # the layer as Keras and PyTorch spell it (``keras.layers.LSTM``, ``torch.nn.LSTM``)
    gates: int  # gate blocks along the gates axis of W (input, gates*H), U (H, gates*H) and b
    gate_order: str  # the blocks in numlstm's order, which is Keras'
    bias_rows: int  # 1: b is (gates*H,); 2: (2, gates*H), the input and the recurrent bias
    unit_bias_blocks: tuple  # gate blocks whose bias starts at 1 (Keras' unit_forget_bias), the rest at 0
    torch_blocks: tuple  # PyTorch's gate blocks, as indices into numlstm's order
    format_version: int  # the model-file format version a network of this cell is written with

    def bias_shape(self, hidden):
        """numlstm's ``b`` for ``hidden`` units."""
        return (self.gates * hidden,) if self.bias_rows == 1 else (self.bias_rows, self.gates * hidden)

    @property
    def bias_formula(self):
        """``b``'s shape as text, for messages: ``"(4*hidden,)"``, ``"(2, 3*hidden)"``."""
        return f"({self.gates}*hidden,)" if self.bias_rows == 1 else f"({self.bias_rows}, {self.gates}*hidden)"


CELLS = {
    # Keras/PyTorch LSTM: gates [input | forget | cell | output], one bias (PyTorch's two are summed).
    "lstm": CellSpec("lstm", "LSTM", 4, "[i|f|g|o]", 1, (1,), (0, 1, 2, 3), 1),
    # Keras GRU(reset_after=True) and torch.nn.GRU: [update | reset | new], the bias of the
    # input and of the recurrent product apart; PyTorch orders the blocks [r|z|n].
    "gru": CellSpec("gru", "GRU", 3, "[z|r|n]", 2, (), (1, 0, 2), 2),
}
NAMES = tuple(CELLS)  # a network's table stores a cell as its position here


def cell_spec(cell):
    """The :class:`CellSpec` of ``cell`` (a checked name, see ``_validation.check_cell``)."""
    return CELLS[cell]
