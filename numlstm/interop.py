"""Move LSTM and GRU weights between numlstm, PyTorch and Keras.

numlstm keeps the weights of a stacked LSTM with an optional dense head in a
plain dict, the format of ``get_weights()`` / ``set_weights()``::

    {"layers": [{"W": (input, 4*hidden), "U": (hidden, 4*hidden), "b": (4*hidden,)}, ...],
     "head": {"W": (hidden, outputs), "b": (outputs,)}}      # or None

Gate blocks are ``[i | f | g | o]`` in all three libraries, so converting is
transposing and, for PyTorch, summing its two biases::

    numlstm      PyTorch nn.LSTM layer k        Keras LSTM
    W            weight_ih_l{k}.T               kernel
    U            weight_hh_l{k}.T               recurrent_kernel
    b            bias_ih_l{k} + bias_hh_l{k}    bias
    head W       nn.Linear weight.T             Dense kernel
    head b       nn.Linear bias                 Dense bias

GRU layers (``cell="gru"`` in every function; a PyTorch ``nn.GRU``, a Keras
``GRU(reset_after=True)``, :func:`numlstm.gru_forward`) keep the same dict
with ``W`` (input, 3*hidden), ``U`` (hidden, 3*hidden) and ``b`` (2,
3*hidden): the input bias, then the recurrent bias, which a GRU keeps apart
(the reset gate scales the recurrent one in the candidate). Gate blocks are
``[z | r | n]`` as in Keras; PyTorch orders them ``[r | z | n]``, so its
first two blocks swap places::

    numlstm      PyTorch nn.GRU layer k         Keras GRU(reset_after=True)
    W            weight_ih_l{k}.T, r/z swapped  kernel
    U            weight_hh_l{k}.T, r/z swapped  recurrent_kernel
    b[0]         bias_ih_l{k}, r/z swapped      bias[0]
    b[1]         bias_hh_l{k}, r/z swapped      bias[1]

Every function takes and returns plain NumPy arrays; PyTorch tensors are
accepted wherever an array is (they are detached and copied), and neither
PyTorch nor Keras is imported here. Arrays keep their dtype (float32 or
float64) unless ``dtype=`` asks for another one; nothing is cast silently.

Examples
--------
>>> import numpy as np
>>> from numlstm import interop
>>> rng = np.random.default_rng(0)
>>> weights = {"layers": [{"W": rng.standard_normal((3, 8)), "U": rng.standard_normal((2, 8)),
...                        "b": np.zeros(8)}],
...            "head": {"W": rng.standard_normal((2, 1)), "b": np.zeros(1)}}
>>> [a.shape for a in interop.to_keras(weights)]
[(3, 8), (2, 8), (8,), (2, 1), (1,)]
>>> lstm_sd, linear_sd = interop.to_torch(weights)
>>> lstm_sd["weight_ih_l0"].shape, linear_sd["weight"].shape
((8, 3), (1, 2))
>>> back = interop.from_torch(lstm_sd, linear_sd)
>>> bool(np.array_equal(back["layers"][0]["U"], weights["layers"][0]["U"]))
True
>>> gru = {"layers": [{"W": np.ones((3, 6)), "U": np.ones((2, 6)), "b": np.zeros((2, 6))}], "head": None}
>>> gru_sd, _ = interop.to_torch(gru, cell="gru")
>>> gru_sd["weight_hh_l0"].shape, gru_sd["bias_hh_l0"].shape
((6, 2), (6,))
"""

import re
from collections.abc import Mapping

import numpy as np

from numlstm._cells import CELLS, NAMES
from numlstm._validation import FLOAT_DTYPES, check_dtype

__all__ = ["from_keras", "from_torch", "to_keras", "to_torch"]

_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _cell(cell):
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(f"cell must be {' or '.join(repr(c) for c in NAMES)}, got {cell!r}.")
    return CELLS[cell]


def _torch_fix(cell):
    return (f"Pass the state_dict() of a torch.nn.{cell.name} (or the module itself) and, for the head, "
            "that of a torch.nn.Linear.")


def _keras_fix(cell):
    layer = f"{cell.name} layers" + (" (reset_after=True)" if cell.bias_rows == 2 else "")
    return (f"weight_list should be model.get_weights() of a Keras Sequential of {layer} followed "
            f"by at most one Dense layer: [kernel, recurrent_kernel, bias] per {cell.name} layer, then "
            "[kernel, bias] for the Dense layer.")


_WEIGHTS_FIX = ("weights should be the dict returned by get_weights(), from_torch() or from_keras(): "
                "{'layers': [{'W', 'U', 'b'}, ...], 'head': {'W', 'b'} or None}.")


# --- shared helpers ------------------------------------------------------------------


def _to_numpy(value, label):
    """An ndarray from an array-like or, duck-typed, a (possibly CUDA, grad-tracking) tensor."""
    if hasattr(value, "detach"):
        try:
            value = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as err:
            raise TypeError(
                f"{label} could not be converted to a NumPy array ({err}). Convert the tensor to "
                f"float32 or float64 first, e.g. tensor.float()."
            ) from None
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{label} must be an array, got {type(value).__name__} ({err}).") from None


def _cast_all(arrays, dtype):
    """Copy every array of ``{label: ndarray}`` into one float dtype, C-contiguous.

    With ``dtype=None`` all arrays must already share float32 or float64;
    mixed or other dtypes raise TypeError naming the explicit conversion.
    """
    if dtype is not None:
        target = check_dtype(dtype)
        for label, arr in arrays.items():
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"{label} has dtype {arr.dtype}; expected real numbers that can be cast to {target}.")
    else:
        target = None
        for label, arr in arrays.items():
            if arr.dtype not in FLOAT_DTYPES:
                raise TypeError(
                    f"{label} has dtype {arr.dtype}; expected float32 or float64. "
                    f"Pass dtype='float32' (or 'float64') to convert explicitly."
                )
            if target is None:
                target, first = arr.dtype, label
            elif arr.dtype != target:
                raise TypeError(
                    f"{label} has dtype {arr.dtype} but {first} has dtype {target}; numlstm never casts "
                    f"silently. Pass dtype='float32' or dtype='float64' to convert all arrays to one dtype."
                )
    return {label: np.array(arr, dtype=target, order="C", copy=True) for label, arr in arrays.items()}


def _check_shape(arr, label, expected, formula, fix):
    """``expected`` is a tuple of ints or None (any size); ``formula`` names its axes."""
    if arr.ndim != len(expected) or any(e is not None and s != e for s, e in zip(arr.shape, expected)):
        sizes = ["any" if e is None else str(e) for e in expected]
        want = f"({sizes[0]},)" if len(sizes) == 1 else "(" + ", ".join(sizes) + ")"
        raise ValueError(f"{label} has shape {arr.shape}; expected {formula} = {want}. {fix}")


def _hidden_from(arr, gates_axis, gates=4):
    """Hidden size read from a recurrent matrix, preferring its gates*hidden axis."""
    if arr.ndim == 2 and arr.shape[gates_axis] % gates == 0 and arr.shape[gates_axis] > 0:
        return arr.shape[gates_axis] // gates
    if arr.ndim == 2 and arr.shape[1 - gates_axis] > 0:
        return arr.shape[1 - gates_axis]
    return 1


def _recurrent_fix(arr, gates_axis, cell, fix):
    """``fix``, saying which ``cell=`` to pass when ``arr`` is shaped as the other
    cell's recurrent weights."""
    for other in CELLS.values():
        if (other is not cell and arr.ndim == 2 and arr.shape[1 - gates_axis] > 0
                and arr.shape[gates_axis] == other.gates * arr.shape[1 - gates_axis]):
            return f"{fix} Its shape is that of {other.name} weights: pass cell={other.key!r}."
    return fix


def _bias_fix(b, H, cell, fix):
    """``fix``, explaining a GRU bias of one row: Keras's ``reset_after=False``."""
    if cell.bias_rows == 2 and b.shape == (cell.gates * H,):
        return (f"A {cell.name} bias of one row ({cell.gates}*hidden,) is that of a Keras {cell.name} with "
                f"reset_after=False, a different "
                f"model that numlstm does not run: rebuild the layer with reset_after=True (the Keras default). "
                f"{fix}")
    return fix


def _torch_order(a, cell):
    """Gate blocks along axis 0 between PyTorch's order and numlstm's (Keras'): for a GRU,
    ``[r|z|n]`` <-> ``[z|r|n]``, the first two blocks swap places (the permutation is its own
    inverse). A new C-contiguous array."""
    H = a.shape[0] // cell.gates
    return np.ascontiguousarray(np.concatenate([a[k * H:(k + 1) * H] for k in cell.torch_blocks]))


def _resolve(obj, method):
    """A state dict / weight list from an object that offers ``method`` (a module or model)."""
    if not isinstance(obj, (Mapping, list, tuple, np.ndarray)) and callable(getattr(obj, method, None)):
        return getattr(obj, method)()
    return obj


def _check_weights(weights, name="weights", cell=CELLS["lstm"]):
    """Validate the numlstm weights dict of ``cell`` layers; return ``{label: ndarray}``
    in order, the layer count and whether there is a head."""
    weights = _resolve(weights, "get_weights")
    if not isinstance(weights, Mapping) or "layers" not in weights:
        raise TypeError(f"{name} must be a dict with keys 'layers' and 'head', got {type(weights).__name__}. "
                        f"{_WEIGHTS_FIX}")
    layers = weights["layers"]
    if not isinstance(layers, (list, tuple)) or len(layers) == 0:
        raise ValueError(f"{name}['layers'] must be a non-empty list of dicts with keys 'W', 'U', 'b', "
                         f"got {layers!r:.80}. {_WEIGHTS_FIX}")
    if "embedding" in weights or any(isinstance(layer, Mapping) and "reverse" in layer for layer in layers):
        raise ValueError(f"{name} holds an embedding layer or bidirectional layers, which the PyTorch and Keras "
                         "converters do not handle yet (they would drop those weights); convert a model without "
                         "embedding_dim and bidirectional, or copy the arrays of get_weights() by hand.")
    arrays = {}
    hidden = None
    for index, layer in enumerate(layers):
        where = f"{name}['layers'][{index}]"
        if not isinstance(layer, Mapping):
            raise TypeError(f"{where} must be a dict with keys 'W', 'U', 'b', got {type(layer).__name__}. "
                            f"{_WEIGHTS_FIX}")
        missing = [k for k in "WUb" if k not in layer]
        if missing:
            raise ValueError(f"{where} is missing key(s) {missing}; expected 'W', 'U' and 'b'. {_WEIGHTS_FIX}")
        W, U, b = (_to_numpy(layer[k], f"{where}['{k}']") for k in "WUb")
        g = cell.gates
        H = _hidden_from(U, 1, g)
        _check_shape(U, f"{where}['U']", (H, g * H), f"(hidden, {g}*hidden)", _recurrent_fix(U, 1, cell, _WEIGHTS_FIX))
        previous = "any" if hidden is None else f"{hidden} (hidden of layer {index - 1})"
        _check_shape(W, f"{where}['W']", (hidden, g * H), f"(input, {g}*hidden) with input={previous}",
                     _WEIGHTS_FIX)
        _check_shape(b, f"{where}['b']", cell.bias_shape(H), cell.bias_formula,
                     _bias_fix(b, H, cell, _WEIGHTS_FIX))
        arrays.update({f"{where}['W']": W, f"{where}['U']": U, f"{where}['b']": b})
        hidden = H
    head = weights.get("head")
    if head is not None:
        if not isinstance(head, Mapping) or "W" not in head or "b" not in head:
            raise ValueError(f"{name}['head'] must be None or a dict with keys 'W' and 'b', got {head!r:.80}. "
                             f"{_WEIGHTS_FIX}")
        Wd = _to_numpy(head["W"], f"{name}['head']['W']")
        bd = _to_numpy(head["b"], f"{name}['head']['b']")
        _check_shape(Wd, f"{name}['head']['W']", (hidden, None),
                     f"(hidden, outputs) with hidden={hidden} from the last {cell.name} layer", _WEIGHTS_FIX)
        _check_shape(bd, f"{name}['head']['b']", (Wd.shape[1],), "(outputs,)", _WEIGHTS_FIX)
        arrays.update({f"{name}['head']['W']": Wd, f"{name}['head']['b']": bd})
    return arrays, len(layers), head is not None


def _split_weights(arrays, n_layers, has_head):
    """Turn the ordered ``{label: ndarray}`` of :func:`_check_weights` back into (layers, head)."""
    values = list(arrays.values())
    layers = [tuple(values[3 * k:3 * k + 3]) for k in range(n_layers)]
    head = tuple(values[3 * n_layers:]) if has_head else None
    return layers, head


def _assemble(layers, head):
    return {"layers": [{"W": W, "U": U, "b": b} for W, U, b in layers],
            "head": None if head is None else {"W": head[0], "b": head[1]}}


# --- PyTorch -------------------------------------------------------------------------


def _torch_layer_keys(state, name, prefix, cell):
    """Parse ``state`` into ``{layer: {kind: key}}``, rejecting what numlstm cannot run."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string such as 'lstm.', got {type(prefix).__name__} {prefix!r}.")
    layers = {}
    unexpected = []
    for key in state:
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        match = _TORCH_KEY.match(key[len(prefix):])
        if match is None:
            unexpected.append(key)
            continue
        kind, layer, reverse = match.groups()
        if reverse:
            raise ValueError(
                f"{name} has key {key!r}: bidirectional {cell.name}s are not supported. numlstm layers run "
                f"forward in time only; export an nn.{cell.name} built with bidirectional=False."
            )
        if kind == "weight_hr":
            raise ValueError(
                f"{name} has key {key!r}: LSTMs with projections (proj_size > 0) are not supported. "
                f"Export an nn.LSTM built with proj_size=0."
            )
        layers.setdefault(int(layer), {})[kind] = key
    if not layers:
        guesses = sorted({k[:-len("weight_ih_l0")] for k in state
                          if isinstance(k, str) and k.endswith("weight_ih_l0")})
        hint = (f" The keys look prefixed: pass prefix={guesses[0]!r}." if guesses else
                f" {_torch_fix(cell)}")
        shown = list(state)[:8]
        raise ValueError(f"{name} has no key {prefix + 'weight_ih_l0'!r}; got keys {shown}"
                         f"{' ...' if len(state) > 8 else ''}.{hint}")
    if unexpected:
        raise ValueError(f"{name} has unexpected key(s) {unexpected[:8]}; expected only weight_ih_l<k>, "
                         f"weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> after prefix {prefix!r}. {_torch_fix(cell)}")
    n_layers = max(layers) + 1
    # nn.LSTM(bias=False) drops the biases of every layer; any bias key means all are expected.
    has_bias = any(found.keys() & {"bias_ih", "bias_hh"} for found in layers.values())
    need = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
    for k in range(n_layers):
        found = layers.get(k, {})
        missing = [f"{prefix}{kind}_l{k}" for kind in need if kind not in found]
        if missing:
            raise ValueError(f"{name} is missing key(s) {missing} (it has layers up to l{n_layers - 1}). "
                             f"{_torch_fix(cell)}")
    return [layers[k] for k in range(n_layers)]


def from_torch(lstm_state_dict, linear_state_dict=None, *, prefix="", linear_prefix="", dtype=None, cell="lstm"):
    """numlstm weights from a PyTorch ``nn.LSTM`` or ``nn.GRU`` (and ``nn.Linear`` head).

    Parameters
    ----------
    lstm_state_dict : mapping or torch.nn.LSTM or torch.nn.GRU
        ``lstm.state_dict()`` (or the module): ``weight_ih_l{k}`` of shape
        ``(4*hidden, input)``, ``weight_hh_l{k}`` of shape
        ``(4*hidden, hidden)`` and, unless built with ``bias=False``,
        ``bias_ih_l{k}`` and ``bias_hh_l{k}`` of shape ``(4*hidden,)``, for
        every layer ``k`` (``3*hidden`` for a GRU). Values are arrays or
        tensors (on any device).
    linear_state_dict : mapping or torch.nn.Linear, optional
        The dense head: ``weight`` of shape ``(outputs, hidden)`` and
        ``bias`` of shape ``(outputs,)`` (zeros when absent).
    prefix, linear_prefix : str
        Prefixes of the keys to read, e.g. ``prefix="lstm."`` and
        ``linear_prefix="head."`` when both state dicts are the
        ``state_dict()`` of one model holding ``self.lstm`` and ``self.head``.
        Keys without the prefix are ignored.
    dtype : {None, "float32", "float64"}
        Convert to this dtype; by default every array keeps its dtype, which
        must be float32 or float64 and the same for all.
    cell : {"lstm", "gru"}
        The kind of layer: ``"gru"`` for an ``nn.GRU``.

    Returns
    -------
    dict
        ``{"layers": [{"W", "U", "b"}, ...], "head": {"W", "b"} or None}``
        with ``W = weight_ih.T``, ``U = weight_hh.T``, ``b = bias_ih +
        bias_hh``; new arrays that share no memory with the input. For a
        GRU, ``b = [bias_ih, bias_hh]`` of shape (2, 3*hidden), and the
        gate blocks are reordered from PyTorch's ``[r|z|n]`` to ``[z|r|n]``
        (see :func:`numlstm.gru_forward`).

    Raises
    ------
    ValueError
        On missing keys or wrong shapes (with the ``cell=`` to pass when
        the shapes are the other kind of layer's), and for bidirectional
        layers or LSTMs with ``proj_size > 0``, which numlstm does not run.
    TypeError
        On non-float or mixed dtypes without ``dtype=``.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm.interop import from_torch
    >>> state = {"weight_ih_l0": np.zeros((8, 3)), "weight_hh_l0": np.zeros((8, 2)),
    ...          "bias_ih_l0": np.ones(8), "bias_hh_l0": np.ones(8)}
    >>> w = from_torch(state, {"weight": np.ones((1, 2)), "bias": np.zeros(1)})
    >>> w["layers"][0]["W"].shape, w["layers"][0]["U"].shape, w["layers"][0]["b"][:3]
    ((3, 8), (2, 8), array([2., 2., 2.]))
    >>> w["head"]["W"].shape
    (2, 1)
    >>> from_torch(state, dtype="float32")["layers"][0]["b"].dtype
    dtype('float32')
    >>> gru = {"weight_ih_l0": np.zeros((6, 3)), "weight_hh_l0": np.zeros((6, 2)),
    ...        "bias_ih_l0": np.arange(6.0), "bias_hh_l0": np.ones(6)}
    >>> from_torch(gru, cell="gru")["layers"][0]["b"]  # blocks [r|z|n] -> [z|r|n]
    array([[2., 3., 0., 1., 4., 5.],
           [1., 1., 1., 1., 1., 1.]])
    """
    cell = _cell(cell)
    if dtype is not None:
        check_dtype(dtype)
    fix = _torch_fix(cell)
    state = _resolve(lstm_state_dict, "state_dict")
    if not isinstance(state, Mapping):
        raise TypeError(f"lstm_state_dict must be a mapping such as nn.{cell.name}.state_dict(), "
                        f"got {type(state).__name__}. {fix}")
    arrays = {}
    hidden = None
    layer_keys = _torch_layer_keys(state, "lstm_state_dict", prefix, cell)
    n_layers = len(layer_keys)
    g = cell.gates
    for k, keys in enumerate(layer_keys):
        label = {kind: f"lstm_state_dict[{key!r}]" for kind, key in keys.items()}
        w_ih = _to_numpy(state[keys["weight_ih"]], label["weight_ih"])
        w_hh = _to_numpy(state[keys["weight_hh"]], label["weight_hh"])
        H = _hidden_from(w_hh, 0, g)
        _check_shape(w_hh, label["weight_hh"], (g * H, H), f"({g}*hidden, hidden)", _recurrent_fix(w_hh, 0, cell, fix))
        previous = "input" if hidden is None else f"hidden of layer {k - 1}"
        _check_shape(w_ih, label["weight_ih"], (g * H, hidden), f"({g}*hidden, {previous})", fix)
        if "bias_ih" in keys:
            b_ih = _to_numpy(state[keys["bias_ih"]], label["bias_ih"])
            b_hh = _to_numpy(state[keys["bias_hh"]], label["bias_hh"])
            _check_shape(b_ih, label["bias_ih"], (g * H,), f"({g}*hidden,)", fix)
            _check_shape(b_hh, label["bias_hh"], (g * H,), f"({g}*hidden,)", fix)
        else:
            b_ih = b_hh = None
        arrays.update({(k, "W"): (label["weight_ih"], w_ih), (k, "U"): (label["weight_hh"], w_hh)})
        if b_ih is not None:
            arrays.update({(k, "b_ih"): (label["bias_ih"], b_ih), (k, "b_hh"): (label["bias_hh"], b_hh)})
        hidden = H
    if linear_state_dict is not None:
        arrays.update(_torch_linear_arrays(linear_state_dict, linear_prefix, hidden, cell))
    cast = _cast_all({label: arr for label, arr in arrays.values()}, dtype)
    out = {key: cast[label] for key, (label, _) in arrays.items()}
    target = next(iter(cast.values())).dtype
    layers = []
    for k in range(n_layers):
        w_ih, w_hh = out[(k, "W")], out[(k, "U")]
        zeros = np.zeros(w_hh.shape[0], dtype=target)  # nn.LSTM/nn.GRU(bias=False)
        b_ih, b_hh = out.get((k, "b_ih"), zeros), out.get((k, "b_hh"), zeros)
        w_ih, w_hh, b_ih, b_hh = (_torch_order(a, cell) for a in (w_ih, w_hh, b_ih, b_hh))
        b = np.stack([b_ih, b_hh]) if cell.bias_rows == 2 else b_ih + b_hh  # PyTorch's two biases, or their sum
        layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), b))
    head = None
    if linear_state_dict is not None:
        Wd = out[("head", "weight")]
        bd = out.get(("head", "bias"))
        head = (np.ascontiguousarray(Wd.T), np.zeros(Wd.shape[0], dtype=target) if bd is None else bd)
    return _assemble(layers, head)


def _torch_linear_arrays(linear_state_dict, prefix, hidden, cell):
    fix = _torch_fix(cell)
    state = _resolve(linear_state_dict, "state_dict")
    if not isinstance(state, Mapping):
        raise TypeError(f"linear_state_dict must be a mapping such as nn.Linear.state_dict(), "
                        f"got {type(state).__name__}. {fix}")
    if not isinstance(prefix, str):
        raise TypeError(f"linear_prefix must be a string such as 'head.', got {type(prefix).__name__} {prefix!r}.")
    keys = [k for k in state if isinstance(k, str) and k.startswith(prefix)]
    if prefix + "weight" not in keys:
        guesses = sorted(k[:-len("weight")] for k in state if isinstance(k, str) and k.endswith(".weight"))
        hint = f" Pass linear_prefix= one of {guesses}." if guesses else f" {fix}"
        raise ValueError(f"linear_state_dict has no key {prefix + 'weight'!r}; got keys {list(state)[:8]}.{hint}")
    unexpected = [k for k in keys if k not in (prefix + "weight", prefix + "bias")]
    if unexpected:
        raise ValueError(f"linear_state_dict has unexpected key(s) {unexpected[:8]}; expected only "
                         f"{prefix + 'weight'!r} and {prefix + 'bias'!r}. {fix}")
    label = f"linear_state_dict[{prefix + 'weight'!r}]"
    weight = _to_numpy(state[prefix + "weight"], label)
    _check_shape(weight, label, (None, hidden),
                 f"(outputs, hidden) with hidden={hidden} from the last {cell.name} layer", fix)
    arrays = {("head", "weight"): (label, weight)}
    if prefix + "bias" in state:
        label = f"linear_state_dict[{prefix + 'bias'!r}]"
        bias = _to_numpy(state[prefix + "bias"], label)
        _check_shape(bias, label, (weight.shape[0],), "(outputs,)", fix)
        arrays[("head", "bias")] = (label, bias)
    return arrays


def to_torch(weights, *, prefix="", linear_prefix="", dtype=None, cell="lstm"):
    """PyTorch state dicts (of NumPy arrays) from numlstm weights.

    Parameters
    ----------
    weights : dict or fitted estimator
        ``{"layers": [{"W", "U", "b"}, ...], "head": {"W", "b"} or None}``,
        as from ``get_weights()`` (an object with ``get_weights`` is
        accepted too).
    prefix, linear_prefix : str
        Put in front of every key, e.g. ``"lstm."`` and ``"head."`` to load
        both dicts into one model holding ``self.lstm`` and ``self.head``.
    dtype : {None, "float32", "float64"}
        Convert to this dtype; by default the weights' own (float32/float64).
    cell : {"lstm", "gru"}
        The kind of layer: ``"gru"`` for weights of :func:`numlstm.gru_forward`,
        to load into an ``nn.GRU``.

    Returns
    -------
    lstm_state_dict : dict of ndarray
        ``weight_ih_l{k}`` = ``W.T``, ``weight_hh_l{k}`` = ``U.T``,
        ``bias_ih_l{k}`` = ``b`` and ``bias_hh_l{k}`` = zeros: PyTorch adds
        the two biases, so the whole bias goes in ``bias_ih``. For a GRU,
        ``bias_ih_l{k}`` = ``b[0]`` and ``bias_hh_l{k}`` = ``b[1]``, and every
        array has its gate blocks reordered to PyTorch's ``[r|z|n]``.
    linear_state_dict : dict of ndarray or None
        ``weight`` (outputs, hidden) and ``bias``; None without a head.

    Load them with ``module.load_state_dict({k: torch.from_numpy(v) for k, v
    in sd.items()})`` into an ``nn.LSTM(input, hidden, num_layers=len(layers),
    batch_first=True)`` (any ``batch_first``) and an ``nn.Linear(hidden,
    outputs)`` (``nn.GRU`` alike). PyTorch needs the same hidden size in every layer.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm.interop import to_torch
    >>> w = {"layers": [{"W": np.ones((3, 8)), "U": np.ones((2, 8)), "b": np.arange(8.0)}], "head": None}
    >>> lstm_sd, linear_sd = to_torch(w)
    >>> list(lstm_sd), linear_sd
    (['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'], None)
    >>> lstm_sd["weight_ih_l0"].shape, bool((lstm_sd["bias_hh_l0"] == 0).all())
    ((8, 3), True)
    """
    for name, value in (("prefix", prefix), ("linear_prefix", linear_prefix)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__} {value!r}.")
    cell = _cell(cell)
    arrays, n_layers, has_head = _check_weights(weights, cell=cell)
    layers, head = _split_weights(_cast_all(arrays, dtype), n_layers, has_head)
    lstm_sd = {}
    for k, (W, U, b) in enumerate(layers):
        b_ih, b_hh = (b[0], b[1]) if cell.bias_rows == 2 else (b, np.zeros_like(b))
        w_ih, w_hh, b_ih, b_hh = (_torch_order(a, cell) for a in (W.T, U.T, b_ih, b_hh))
        lstm_sd[f"{prefix}weight_ih_l{k}"] = w_ih
        lstm_sd[f"{prefix}weight_hh_l{k}"] = w_hh
        lstm_sd[f"{prefix}bias_ih_l{k}"] = b_ih
        lstm_sd[f"{prefix}bias_hh_l{k}"] = b_hh
    linear_sd = None
    if head is not None:
        linear_sd = {f"{linear_prefix}weight": np.ascontiguousarray(head[0].T), f"{linear_prefix}bias": head[1]}
    return lstm_sd, linear_sd


# --- Keras ---------------------------------------------------------------------------


def from_keras(weight_list, *, layers=None, dtype=None, cell="lstm"):
    """numlstm weights from Keras ``model.get_weights()``.

    Parameters
    ----------
    weight_list : list of arrays or Keras model
        ``model.get_weights()`` of a Sequential of ``LSTM`` layers followed
        by at most one ``Dense`` layer: ``[kernel (input, 4*hidden),
        recurrent_kernel (hidden, 4*hidden), bias (4*hidden,)]`` per LSTM
        layer, then ``[kernel (hidden, outputs), bias (outputs,)]``. A model
        (anything with ``get_weights``) is accepted too. With
        ``cell="gru"``, of ``GRU(reset_after=True)`` layers (the Keras
        default): ``[kernel (input, 3*hidden), recurrent_kernel (hidden,
        3*hidden), bias (2, 3*hidden)]`` per layer.
    layers : int, optional
        Number of recurrent layers, checked against the list; by default read
        from it (``3*layers`` arrays without a head, ``3*layers + 2`` with one).
    dtype : {None, "float32", "float64"}
        Convert to this dtype; by default every array keeps its dtype, which
        must be float32 or float64 and the same for all.
    cell : {"lstm", "gru"}
        The kind of recurrent layer.

    Returns
    -------
    dict
        ``{"layers": [{"W", "U", "b"}, ...], "head": {"W", "b"} or None}``
        (new arrays; Keras and numlstm share the layout, so no transposes).

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm.interop import from_keras
    >>> kernel, recurrent, bias = np.ones((3, 8)), np.ones((2, 8)), np.zeros(8)
    >>> w = from_keras([kernel, recurrent, bias, np.ones((2, 1)), np.zeros(1)])
    >>> len(w["layers"]), w["layers"][0]["U"].shape, w["head"]["W"].shape
    (1, (2, 8), (2, 1))
    >>> from_keras([kernel, recurrent, bias])["head"] is None
    True
    >>> gru = [np.ones((3, 6)), np.ones((2, 6)), np.zeros((2, 6))]
    >>> from_keras(gru, cell="gru")["layers"][0]["b"].shape
    (2, 6)
    """
    cell = _cell(cell)
    if dtype is not None:
        check_dtype(dtype)
    fix = _keras_fix(cell)
    weight_list = _resolve(weight_list, "get_weights")
    if isinstance(weight_list, (Mapping, str, bytes, np.ndarray)) or not isinstance(weight_list, (list, tuple)):
        raise TypeError(f"weight_list must be a list of arrays, got {type(weight_list).__name__}. {fix}")
    n = len(weight_list)
    if layers is not None:
        if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 1:
            raise ValueError(f"layers must be None or an integer >= 1, got {layers!r}.")
        if n not in (3 * layers, 3 * layers + 2):
            raise ValueError(f"weight_list has {n} arrays; expected {3 * layers} for layers={layers} {cell.name} "
                             f"layers (3 each) or {3 * layers + 2} with a Dense head. {fix}")
    elif n < 3 or n % 3 == 1:
        raise ValueError(f"weight_list has {n} array(s); expected 3 per {cell.name} layer plus 2 for an optional "
                         f"Dense head (3, 5, 6, 8, ...). {fix}")
    n_layers = n // 3
    arrays = {}
    hidden = None
    g = cell.gates
    for k in range(n_layers):
        names = ("kernel", "recurrent_kernel", "bias")
        labels = [f"weight_list[{3 * k + j}] ({names[j]} of {cell.name} layer {k})" for j in range(3)]
        W, U, b = (_to_numpy(weight_list[3 * k + j], labels[j]) for j in range(3))
        H = _hidden_from(U, 1, g)
        _check_shape(U, labels[1], (H, g * H), f"(hidden, {g}*hidden)", _recurrent_fix(U, 1, cell, fix))
        previous = "input" if hidden is None else f"hidden of layer {k - 1}"
        _check_shape(W, labels[0], (hidden, g * H), f"({previous}, {g}*hidden)", fix)
        _check_shape(b, labels[2], cell.bias_shape(H), cell.bias_formula, _bias_fix(b, H, cell, fix))
        arrays.update(zip(labels, (W, U, b)))
        hidden = H
    has_head = n == 3 * n_layers + 2
    if has_head:
        labels = [f"weight_list[{n - 2}] (Dense kernel)", f"weight_list[{n - 1}] (Dense bias)"]
        Wd, bd = (_to_numpy(weight_list[n - 2 + j], labels[j]) for j in range(2))
        _check_shape(Wd, labels[0], (hidden, None),
                     f"(hidden, outputs) with hidden={hidden} from the last {cell.name} layer", fix)
        _check_shape(bd, labels[1], (Wd.shape[1],), "(outputs,)", fix)
        arrays.update(zip(labels, (Wd, bd)))
    return _assemble(*_split_weights(_cast_all(arrays, dtype), n_layers, has_head))


def to_keras(weights, *, dtype=None, cell="lstm"):
    """Keras ``set_weights()`` list from numlstm weights.

    Parameters
    ----------
    weights : dict or fitted estimator
        ``{"layers": [{"W", "U", "b"}, ...], "head": {"W", "b"} or None}``,
        as from ``get_weights()`` (an object with ``get_weights`` is
        accepted too).
    dtype : {None, "float32", "float64"}
        Convert to this dtype; by default the weights' own (float32/float64).
    cell : {"lstm", "gru"}
        The kind of recurrent layer; Keras's ``GRU(reset_after=True)`` has
        numlstm's GRU layout, so ``cell="gru"`` only changes what is checked.

    Returns
    -------
    list of ndarray
        ``[W, U, b]`` per layer, then ``[head W, head b]`` when there is a
        head: what ``model.set_weights`` expects for a Sequential of
        ``LSTM(hidden, return_sequences=True)`` layers (the last one with
        ``return_sequences=False`` for a forecaster) and one ``Dense(outputs)``
        (``GRU`` layers alike).

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm.interop import from_keras, to_keras
    >>> w = {"layers": [{"W": np.ones((3, 8), np.float32), "U": np.ones((2, 8), np.float32),
    ...                  "b": np.zeros(8, np.float32)}], "head": None}
    >>> [(a.shape, str(a.dtype)) for a in to_keras(w)]
    [((3, 8), 'float32'), ((2, 8), 'float32'), ((8,), 'float32')]
    >>> bool(np.array_equal(from_keras(to_keras(w))["layers"][0]["W"], w["layers"][0]["W"]))
    True
    """
    arrays, _, _ = _check_weights(weights, cell=_cell(cell))
    return list(_cast_all(arrays, dtype).values())
