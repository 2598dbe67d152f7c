"""Weight interop with PyTorch and Keras: layouts, round trips, real torch outputs, bad input.

Tests that need PyTorch take the ``torch`` fixture, so the Keras-format and
round-trip tests still run where torch is not installed. Keras itself is
never imported: its ``get_weights()`` list is built by hand.
"""

import numpy as np
import pytest

import numlstm
from numlstm.interop import from_keras, from_torch, to_keras, to_torch

I, H, O = 3, 4, 2  # input features, hidden units, head outputs


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def random_weights(rng, hidden_sizes=(H, H), input_size=I, outputs=O, dtype=np.float64, head=True):
    layers = []
    fan_in = input_size
    for hidden in hidden_sizes:
        layers.append({"W": rng.standard_normal((fan_in, 4 * hidden)).astype(dtype),
                       "U": rng.standard_normal((hidden, 4 * hidden)).astype(dtype),
                       "b": rng.standard_normal(4 * hidden).astype(dtype)})
        fan_in = hidden
    return {"layers": layers,
            "head": {"W": rng.standard_normal((fan_in, outputs)).astype(dtype),
                     "b": rng.standard_normal(outputs).astype(dtype)} if head else None}


def numlstm_forward(weights, x):
    """Stacked numlstm layers, then the dense head on every time step."""
    h = x
    finals = []
    for layer in weights["layers"]:
        h, (h_T, c_T) = numlstm.lstm_forward(h, layer["W"], layer["U"], layer["b"])
        finals.append((h_T, c_T))
    y = None if weights.get("head") is None else h @ weights["head"]["W"] + weights["head"]["b"]
    return h, y, finals


def assert_weights_equal(a, b):
    assert len(a["layers"]) == len(b["layers"])
    for la, lb in zip(a["layers"], b["layers"]):
        for key in "WUb":
            assert la[key].dtype == lb[key].dtype
            np.testing.assert_array_equal(la[key], lb[key])
    assert (a.get("head") is None) == (b.get("head") is None)
    if a.get("head") is not None:
        for key in "Wb":
            assert a["head"][key].dtype == b["head"][key].dtype
            np.testing.assert_array_equal(a["head"][key], b["head"][key])


def torch_model(torch, *, num_layers=2, bias=True, seed=0):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(I, H, num_layers=num_layers, batch_first=True, bias=bias).double()
    head = torch.nn.Linear(H, O, bias=bias).double()
    return lstm, head


def torch_state(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


# --- PyTorch -------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_reproduces_torch_outputs(torch, rng, bias):
    lstm, head = torch_model(torch, bias=bias)
    x = rng.standard_normal((2, 5, I))
    with torch.no_grad():
        h_torch, (h_n, c_n) = lstm(torch.from_numpy(x))
        y_torch = head(h_torch)
    weights = from_torch(lstm.state_dict(), head.state_dict())
    h, y, finals = numlstm_forward(weights, x)
    assert h.dtype == y.dtype == np.float64
    np.testing.assert_allclose(h, h_torch.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(y, y_torch.numpy(), rtol=0, atol=1e-10)
    for k, (h_T, c_T) in enumerate(finals):
        np.testing.assert_allclose(h_T, h_n[k].numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(c_T, c_n[k].numpy(), rtol=0, atol=1e-10)
    if not bias:
        assert all(not layer["b"].any() for layer in weights["layers"])
        assert not weights["head"]["b"].any()


def test_from_torch_layout(torch):
    lstm, head = torch_model(torch)
    sd = lstm.state_dict()
    weights = from_torch(sd, head.state_dict())
    for k, layer in enumerate(weights["layers"]):
        np.testing.assert_array_equal(layer["W"], sd[f"weight_ih_l{k}"].numpy().T)
        np.testing.assert_array_equal(layer["U"], sd[f"weight_hh_l{k}"].numpy().T)
        np.testing.assert_array_equal(layer["b"], (sd[f"bias_ih_l{k}"] + sd[f"bias_hh_l{k}"]).numpy())
        assert layer["W"].flags.c_contiguous and layer["U"].flags.c_contiguous
    np.testing.assert_array_equal(weights["head"]["W"], head.weight.detach().numpy().T)
    assert from_torch(sd)["head"] is None


def test_from_torch_accepts_modules_parameters_and_prefixes(torch):
    lstm, head = torch_model(torch)
    model = torch.nn.Module()
    model.lstm, model.head = lstm, head
    expected = from_torch(lstm.state_dict(), head.state_dict())
    # whole-model state dict with prefixes
    full = model.state_dict()
    assert_weights_equal(from_torch(full, full, prefix="lstm.", linear_prefix="head."), expected)
    # modules themselves
    assert_weights_equal(from_torch(lstm, head), expected)
    # parameters that track gradients
    assert_weights_equal(from_torch(dict(lstm.named_parameters()), dict(head.named_parameters())), expected)


def test_from_torch_copies(torch):
    lstm, head = torch_model(torch, num_layers=1)
    before = lstm.weight_hh_l0.detach().clone()
    weights = from_torch(lstm.state_dict(), head.state_dict())
    weights["layers"][0]["U"][:] = 0.0
    weights["head"]["W"][:] = 0.0
    assert torch.equal(lstm.weight_hh_l0.detach(), before)
    assert head.weight.detach().abs().sum() > 0


def test_from_torch_keeps_float32_and_casts_on_request(torch):
    lstm = torch.nn.LSTM(I, H, batch_first=True)  # float32 by default
    weights = from_torch(lstm.state_dict())
    assert all(layer[k].dtype == np.float32 for layer in weights["layers"] for k in "WUb")
    weights64 = from_torch(lstm.state_dict(), dtype="float64")
    assert weights64["layers"][0]["b"].dtype == np.float64
    np.testing.assert_array_equal(weights64["layers"][0]["W"], weights["layers"][0]["W"].astype(np.float64))


def test_to_torch_loads_and_reproduces_outputs(torch, rng):
    weights = random_weights(rng)
    lstm_sd, linear_sd = to_torch(weights)
    assert list(lstm_sd) == [f"{kind}_l{k}" for k in range(2) for kind in
                             ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    lstm, head = torch_model(torch, seed=1)
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in lstm_sd.items()})  # strict
    head.load_state_dict({k: torch.from_numpy(v) for k, v in linear_sd.items()})
    x = rng.standard_normal((3, 4, I))
    with torch.no_grad():
        h_torch, _ = lstm(torch.from_numpy(x))
        y_torch = head(h_torch)
    h, y, _ = numlstm_forward(weights, x)
    np.testing.assert_allclose(h, h_torch.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(y, y_torch.numpy(), rtol=0, atol=1e-10)


def test_to_torch_prefixes_load_into_one_model(torch, rng):
    weights = random_weights(rng)
    lstm_sd, linear_sd = to_torch(weights, prefix="lstm.", linear_prefix="head.")
    model = torch.nn.Module()
    model.lstm, model.head = torch_model(torch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in {**lstm_sd, **linear_sd}.items()})
    assert_weights_equal(from_torch(model.lstm, model.head), weights)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden_sizes", [(H,), (H, H), (5, 2, 3)])
@pytest.mark.parametrize("head", [True, False])
def test_torch_round_trip(rng, dtype, hidden_sizes, head):
    weights = random_weights(rng, hidden_sizes, dtype=dtype, head=head)
    lstm_sd, linear_sd = to_torch(weights)
    assert all(v.dtype == dtype for v in lstm_sd.values())
    assert all(not lstm_sd[f"bias_hh_l{k}"].any() for k in range(len(hidden_sizes)))
    assert (linear_sd is None) == (not head)
    assert_weights_equal(from_torch(lstm_sd, linear_sd), weights)


def test_torch_round_trip_sums_biases(torch):
    lstm, head = torch_model(torch)
    sd = torch_state(lstm)
    back, _ = to_torch(from_torch(sd, head.state_dict()))
    for k in range(2):
        np.testing.assert_array_equal(back[f"bias_ih_l{k}"], sd[f"bias_ih_l{k}"] + sd[f"bias_hh_l{k}"])
        np.testing.assert_array_equal(back[f"bias_hh_l{k}"], 0.0)
        np.testing.assert_array_equal(back[f"weight_hh_l{k}"], sd[f"weight_hh_l{k}"])


# --- Keras ---------------------------------------------------------------------------


def test_from_keras_hand_built_list_known_values():
    # One unit, one feature: z = x*kernel + bias (h0 = 0), so one step is computable by hand.
    kernel = np.array([[0.5, -1.0, 2.0, 0.25]])
    recurrent = np.array([[0.1, 0.2, 0.3, 0.4]])
    bias = np.array([0.0, 1.0, -0.5, 0.5])
    dense_kernel, dense_bias = np.array([[2.0]]), np.array([-1.0])
    weights = from_keras([kernel, recurrent, bias, dense_kernel, dense_bias])
    layer = weights["layers"][0]
    np.testing.assert_array_equal(layer["W"], kernel)
    np.testing.assert_array_equal(layer["U"], recurrent)
    np.testing.assert_array_equal(layer["b"], bias)
    np.testing.assert_array_equal(weights["head"]["W"], dense_kernel)
    np.testing.assert_array_equal(weights["head"]["b"], dense_bias)

    x = np.array([[[1.0]]])
    z = 1.0 * kernel[0] + bias  # gate blocks [i | f | g | o]
    i, g, o = 1 / (1 + np.exp(-z[0])), np.tanh(z[2]), 1 / (1 + np.exp(-z[3]))
    c = i * g
    h_expected = o * np.tanh(c)
    _, y, [(h_T, c_T)] = numlstm_forward(weights, x)
    np.testing.assert_allclose(c_T, [[c]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(h_T, [[h_expected]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(y, [[[2.0 * h_expected - 1.0]]], rtol=0, atol=1e-14)


def test_from_keras_infers_layers(rng):
    weights = random_weights(rng, (5, 2, 3))
    arrays = to_keras(weights)
    assert [a.shape for a in arrays] == [(I, 20), (5, 20), (20,), (5, 8), (2, 8), (8,),
                                         (2, 12), (3, 12), (12,), (3, O), (O,)]
    assert len(from_keras(arrays)["layers"]) == 3
    assert len(from_keras(arrays, layers=3)["layers"]) == 3
    assert len(from_keras(arrays[:-2])["layers"]) == 3
    assert from_keras(arrays[:-2])["head"] is None
    assert len(from_keras(tuple(arrays[:3]))["layers"]) == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("head", [True, False])
def test_keras_round_trip(rng, dtype, head):
    weights = random_weights(rng, (H, 2), dtype=dtype, head=head)
    arrays = to_keras(weights)
    assert all(a.dtype == dtype for a in arrays)
    assert len(arrays) == 6 + 2 * head
    assert_weights_equal(from_keras(arrays), weights)
    # and the copies are independent of the input
    arrays[0][:] = 0.0
    assert weights["layers"][0]["W"].any()


def test_keras_and_torch_agree(torch):
    lstm, head = torch_model(torch)
    weights = from_torch(lstm, head)
    assert_weights_equal(from_keras(to_keras(weights)), weights)


def test_objects_with_get_weights(rng):
    weights = random_weights(rng)

    class Fitted:
        def get_weights(self):
            return weights

    assert_weights_equal(from_keras(to_keras(Fitted())), weights)
    assert_weights_equal(from_torch(*to_torch(Fitted())), weights)

    class KerasLike:
        def get_weights(self):
            return to_keras(weights)

    assert_weights_equal(from_keras(KerasLike()), weights)


def test_dtype_argument(rng):
    weights = random_weights(rng, dtype=np.float64)
    assert all(a.dtype == np.float32 for a in to_keras(weights, dtype="float32"))
    assert all(a.dtype == np.float32 for a in to_torch(weights, dtype=np.float32)[0].values())
    arrays = to_keras(weights)
    assert from_keras(arrays, dtype="float32")["head"]["W"].dtype == np.float32
    ints = [np.ones((1, 4), dtype=np.int64), np.ones((1, 4), dtype=np.int64), np.zeros(4, dtype=np.int64)]
    assert from_keras(ints, dtype="float64")["layers"][0]["W"].dtype == np.float64


# --- bad input -----------------------------------------------------------------------


def lstm_state(hidden=H, layers=2):
    sd = {}
    fan_in = I
    for k in range(layers):
        sd.update({f"weight_ih_l{k}": np.zeros((4 * hidden, fan_in)), f"weight_hh_l{k}": np.zeros((4 * hidden, hidden)),
                   f"bias_ih_l{k}": np.zeros(4 * hidden), f"bias_hh_l{k}": np.zeros(4 * hidden)})
        fan_in = hidden
    return sd


class TestBadTorch:
    def test_wrong_recurrent_shape(self):
        sd = lstm_state()
        sd["weight_hh_l1"] = np.zeros((16, 3))
        with pytest.raises(ValueError, match=r"weight_hh_l1'\] has shape \(16, 3\); expected \(4\*hidden, hidden\) "
                                             r"= \(16, 4\)\. Pass the state_dict\(\)"):
            from_torch(sd)

    def test_wrong_input_shape_of_upper_layer(self):
        sd = lstm_state()
        sd["weight_ih_l1"] = np.zeros((16, 3))
        with pytest.raises(ValueError, match=r"weight_ih_l1'\] has shape \(16, 3\); expected "
                                             r"\(4\*hidden, hidden of layer 0\) = \(16, 4\)"):
            from_torch(sd)

    def test_wrong_bias_shape(self):
        sd = lstm_state()
        sd["bias_hh_l0"] = np.zeros(15)
        with pytest.raises(ValueError, match=r"bias_hh_l0'\] has shape \(15,\); expected \(4\*hidden,\) = \(16,\)"):
            from_torch(sd)

    @pytest.mark.parametrize("key", ["weight_hh_l1", "weight_ih_l0", "bias_hh_l0"])
    def test_missing_key(self, key):
        sd = lstm_state()
        del sd[key]
        with pytest.raises(ValueError, match=rf"missing key\(s\) \['{key}'\]"):
            from_torch(sd)

    def test_missing_layer(self):
        sd = lstm_state(layers=3)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            del sd[f"{kind}_l1"]
        missing = r"missing key\(s\) \['weight_ih_l1', 'weight_hh_l1', 'bias_ih_l1', 'bias_hh_l1'\]"
        with pytest.raises(ValueError, match=missing):
            from_torch(sd)

    def test_empty_and_prefixed(self):
        with pytest.raises(ValueError, match=r"no key 'weight_ih_l0'"):
            from_torch({})
        prefixed = {f"lstm.{k}": v for k, v in lstm_state().items()}
        with pytest.raises(ValueError, match=r"The keys look prefixed: pass prefix='lstm\.'"):
            from_torch(prefixed)
        assert len(from_torch(prefixed, prefix="lstm.")["layers"]) == 2

    def test_unexpected_key(self):
        sd = lstm_state()
        sd["weight_ih_l0_extra"] = np.zeros(3)
        with pytest.raises(ValueError, match=r"unexpected key\(s\) \['weight_ih_l0_extra'\]"):
            from_torch(sd)

    def test_bidirectional(self, torch):
        lstm = torch.nn.LSTM(I, H, bidirectional=True).double()
        with pytest.raises(ValueError, match=r"_reverse'.*bidirectional LSTMs are not supported.*bidirectional=False"):
            from_torch(lstm.state_dict())

    def test_bidirectional_without_torch(self):
        sd = lstm_state(layers=1)
        sd["weight_ih_l0_reverse"] = np.zeros((16, I))
        with pytest.raises(ValueError, match=r"bidirectional LSTMs are not supported"):
            from_torch(sd)

    def test_projection(self, torch):
        lstm = torch.nn.LSTM(I, H, proj_size=2).double()
        with pytest.raises(ValueError, match=r"'weight_hr_l0'.*proj_size > 0\) are not supported"):
            from_torch(lstm.state_dict())

    def test_linear_wrong_hidden(self):
        with pytest.raises(ValueError, match=r"linear_state_dict\['weight'\] has shape \(2, 3\); expected "
                                             r"\(outputs, hidden\) with hidden=4 from the last LSTM layer = "
                                             r"\(any, 4\)"):
            from_torch(lstm_state(), {"weight": np.zeros((2, 3)), "bias": np.zeros(2)})
        with pytest.raises(ValueError, match=r"linear_state_dict\['bias'\] has shape \(3,\); expected "
                                             r"\(outputs,\) = \(2,\)"):
            from_torch(lstm_state(), {"weight": np.zeros((2, 4)), "bias": np.zeros(3)})

    def test_linear_missing_weight(self):
        with pytest.raises(ValueError, match=r"linear_state_dict has no key 'weight'.*"
                                             r"linear_prefix= one of \['head\.'\]"):
            from_torch(lstm_state(), {"head.weight": np.zeros((2, 4))})

    def test_not_a_mapping(self):
        with pytest.raises(TypeError, match=r"lstm_state_dict must be a mapping.*got list"):
            from_torch([np.zeros((16, 3))])
        with pytest.raises(TypeError, match=r"linear_state_dict must be a mapping.*got ndarray"):
            from_torch(lstm_state(), np.zeros((2, 4)))

    def test_dtypes(self):
        sd = lstm_state()
        sd["weight_hh_l1"] = sd["weight_hh_l1"].astype(np.float32)
        with pytest.raises(TypeError, match=r"weight_hh_l1'\] has dtype float32 but .* has dtype float64; "
                                            r"numlstm never casts silently\. Pass dtype="):
            from_torch(sd)
        assert from_torch(sd, dtype="float32")["layers"][1]["U"].dtype == np.float32
        sd = lstm_state()
        sd["bias_ih_l0"] = sd["bias_ih_l0"].astype(np.int64)
        with pytest.raises(TypeError, match=r"bias_ih_l0'\] has dtype int64; expected float32 or float64"):
            from_torch(sd)
        with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64'"):
            from_torch(lstm_state(), dtype="float16")

    def test_bfloat16_tensor(self, torch):
        lstm = torch.nn.LSTM(I, H).to(torch.bfloat16)
        with pytest.raises(TypeError, match=r"weight_ih_l0'\] could not be converted.*tensor\.float\(\)"):
            from_torch(lstm.state_dict())

    def test_prefix_type(self):
        with pytest.raises(TypeError, match=r"prefix must be a string"):
            from_torch(lstm_state(), prefix=None)
        with pytest.raises(TypeError, match=r"linear_prefix must be a string"):
            to_torch(from_torch(lstm_state()), linear_prefix=1)


class TestBadKeras:
    @pytest.mark.parametrize("n", [1, 2, 4, 7])
    def test_list_length(self, rng, n):
        arrays = to_keras(random_weights(rng, (H, H, H)))[:n]
        with pytest.raises(ValueError, match=rf"weight_list has {n} array\(s\); expected 3 per LSTM layer plus 2 "
                                             r"for an optional Dense head"):
            from_keras(arrays)

    def test_layers_mismatch(self, rng):
        arrays = to_keras(random_weights(rng))
        with pytest.raises(ValueError, match=r"weight_list has 8 arrays; expected 3 for layers=1 LSTM layers "
                                             r"\(3 each\) or 5 with a Dense head"):
            from_keras(arrays, layers=1)
        with pytest.raises(ValueError, match=r"layers must be None or an integer >= 1"):
            from_keras(arrays, layers=0)

    def test_wrong_recurrent_kernel(self):
        arrays = [np.zeros((I, 16)), np.zeros((3, 16)), np.zeros(16)]
        with pytest.raises(ValueError, match=r"weight_list\[1\] \(recurrent_kernel of LSTM layer 0\) has shape "
                                             r"\(3, 16\); expected \(hidden, 4\*hidden\) = \(4, 16\)\. "
                                             r"weight_list should be model\.get_weights\(\)"):
            from_keras(arrays)

    def test_wrong_upper_kernel(self, rng):
        arrays = to_keras(random_weights(rng))
        arrays[3] = np.zeros((5, 16))
        with pytest.raises(ValueError, match=r"weight_list\[3\] \(kernel of LSTM layer 1\) has shape \(5, 16\); "
                                             r"expected \(hidden of layer 0, 4\*hidden\) = \(4, 16\)"):
            from_keras(arrays)

    def test_wrong_dense(self, rng):
        arrays = to_keras(random_weights(rng))
        arrays[-2] = np.zeros((3, O))
        with pytest.raises(ValueError, match=r"weight_list\[6\] \(Dense kernel\) has shape \(3, 2\); expected "
                                             r"\(hidden, outputs\) with hidden=4"):
            from_keras(arrays)
        arrays = to_keras(random_weights(rng))
        arrays[-1] = np.zeros(O + 1)
        with pytest.raises(ValueError, match=r"weight_list\[7\] \(Dense bias\) has shape \(3,\); expected "
                                             r"\(outputs,\) = \(2,\)"):
            from_keras(arrays)

    def test_not_a_list(self, rng):
        with pytest.raises(TypeError, match=r"weight_list must be a list of arrays, got dict"):
            from_keras(random_weights(rng))
        with pytest.raises(TypeError, match=r"weight_list must be a list of arrays, got ndarray"):
            from_keras(np.zeros((3, 4, 16)))

    def test_mixed_dtypes(self, rng):
        arrays = to_keras(random_weights(rng))
        arrays[4] = arrays[4].astype(np.float32)
        with pytest.raises(TypeError, match=r"weight_list\[4\] \(recurrent_kernel of LSTM layer 1\) has dtype "
                                            r"float32 but .* float64; numlstm never casts silently"):
            from_keras(arrays)


class TestBadWeights:
    @pytest.mark.parametrize("convert", [to_keras, to_torch])
    def test_not_a_weights_dict(self, convert):
        with pytest.raises(TypeError, match=r"weights must be a dict with keys 'layers' and 'head', got list"):
            convert([np.zeros(3)])
        with pytest.raises(ValueError, match=r"weights\['layers'\] must be a non-empty list"):
            convert({"layers": [], "head": None})
        with pytest.raises(ValueError, match=r"weights\['layers'\]\[0\] is missing key\(s\) \['U'\]"):
            convert({"layers": [{"W": np.zeros((I, 16)), "b": np.zeros(16)}]})

    @pytest.mark.parametrize("convert", [to_keras, to_torch])
    def test_wrong_shapes(self, rng, convert):
        weights = random_weights(rng)
        weights["layers"][1]["U"] = np.zeros((3, 16))
        with pytest.raises(ValueError, match=r"weights\['layers'\]\[1\]\['U'\] has shape \(3, 16\); expected "
                                             r"\(hidden, 4\*hidden\) = \(4, 16\)\. weights should be the dict"):
            convert(weights)
        weights = random_weights(rng)
        weights["layers"][1]["W"] = np.zeros((I, 16))
        with pytest.raises(ValueError, match=r"weights\['layers'\]\[1\]\['W'\] has shape \(3, 16\); expected "
                                             r"\(input, 4\*hidden\) with input=4 \(hidden of layer 0\) = \(4, 16\)"):
            convert(weights)
        weights = random_weights(rng)
        weights["head"]["W"] = np.zeros((3, O))
        with pytest.raises(ValueError, match=r"weights\['head'\]\['W'\] has shape \(3, 2\); expected "
                                             r"\(hidden, outputs\) with hidden=4"):
            convert(weights)
        weights = random_weights(rng)
        weights["head"] = {"W": np.zeros((H, O))}
        with pytest.raises(ValueError, match=r"weights\['head'\] must be None or a dict with keys 'W' and 'b'"):
            convert(weights)

    def test_mixed_dtypes(self, rng):
        weights = random_weights(rng)
        weights["head"]["b"] = weights["head"]["b"].astype(np.float32)
        with pytest.raises(TypeError, match=r"weights\['head'\]\['b'\] has dtype float32 but .* float64"):
            to_keras(weights)
        assert to_keras(weights, dtype="float32")[-1].dtype == np.float32


# --- GRU (cell="gru") ----------------------------------------------------------------


def random_gru_weights(rng, hidden_sizes=(H, H), input_size=I, outputs=O, dtype=np.float64, head=True):
    layers = []
    fan_in = input_size
    for hidden in hidden_sizes:
        layers.append({"W": rng.standard_normal((fan_in, 3 * hidden)).astype(dtype),
                       "U": rng.standard_normal((hidden, 3 * hidden)).astype(dtype),
                       "b": rng.standard_normal((2, 3 * hidden)).astype(dtype)})
        fan_in = hidden
    return {"layers": layers,
            "head": {"W": rng.standard_normal((fan_in, outputs)).astype(dtype),
                     "b": rng.standard_normal(outputs).astype(dtype)} if head else None}


def numlstm_gru_forward(weights, x, h0=None):
    """Stacked numlstm GRU layers (``h0``: (layers, batch, hidden) as in PyTorch), then the head."""
    h, finals = x, []
    for k, layer in enumerate(weights["layers"]):
        h, h_T = numlstm.gru_forward(h, layer["W"], layer["U"], layer["b"], None if h0 is None else h0[k])
        finals.append(h_T)
    y = None if weights.get("head") is None else h @ weights["head"]["W"] + weights["head"]["b"]
    return h, y, finals


def torch_gru_model(torch, *, num_layers=2, bias=True, seed=0):
    torch.manual_seed(seed)
    gru = torch.nn.GRU(I, H, num_layers=num_layers, batch_first=True, bias=bias).double()
    head = torch.nn.Linear(H, O, bias=bias).double()
    return gru, head


@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_gru_reproduces_torch_outputs(torch, rng, bias):
    gru, head = torch_gru_model(torch, bias=bias)
    x, h0 = rng.standard_normal((3, 5, I)), rng.standard_normal((2, 3, H))
    with torch.no_grad():
        h_torch, h_n = gru(torch.from_numpy(x), torch.from_numpy(h0))
        y_torch = head(h_torch)
    weights = from_torch(gru, head, cell="gru")
    assert [layer["b"].shape for layer in weights["layers"]] == [(2, 3 * H)] * 2
    h, y, finals = numlstm_gru_forward(weights, x, h0)
    assert h.dtype == y.dtype == np.float64
    np.testing.assert_allclose(h, h_torch.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(y, y_torch.numpy(), rtol=0, atol=1e-12)
    for k, h_T in enumerate(finals):
        np.testing.assert_allclose(h_T, h_n[k].numpy(), rtol=0, atol=1e-12)
    if not bias:
        assert all(not layer["b"].any() for layer in weights["layers"])


def test_from_torch_gru_layout(torch):
    """PyTorch's blocks [r|z|n] land as [z|r|n]; the two biases stay apart."""
    gru, _ = torch_gru_model(torch, num_layers=1)
    sd = torch_state(gru)
    layer = from_torch(sd, cell="gru")["layers"][0]
    r, z, n = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)
    for ours, theirs in ((slice(0, H), z), (slice(H, 2 * H), r), (slice(2 * H, 3 * H), n)):
        np.testing.assert_array_equal(layer["W"][:, ours], sd["weight_ih_l0"][theirs].T)
        np.testing.assert_array_equal(layer["U"][:, ours], sd["weight_hh_l0"][theirs].T)
        np.testing.assert_array_equal(layer["b"][0, ours], sd["bias_ih_l0"][theirs])
        np.testing.assert_array_equal(layer["b"][1, ours], sd["bias_hh_l0"][theirs])
    assert all(layer[k].flags.c_contiguous for k in "WUb")


def test_to_torch_gru_loads_and_reproduces_outputs(torch, rng):
    weights = random_gru_weights(rng)
    gru_sd, linear_sd = to_torch(weights, cell="gru")
    assert gru_sd["bias_hh_l1"].shape == (3 * H,) and gru_sd["bias_hh_l1"].any()
    gru, head = torch_gru_model(torch, seed=1)
    gru.load_state_dict({k: torch.from_numpy(v) for k, v in gru_sd.items()})  # strict
    head.load_state_dict({k: torch.from_numpy(v) for k, v in linear_sd.items()})
    x = rng.standard_normal((2, 4, I))
    with torch.no_grad():
        h_torch, _ = gru(torch.from_numpy(x))
        y_torch = head(h_torch)
    h, y, _ = numlstm_gru_forward(weights, x)
    np.testing.assert_allclose(h, h_torch.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(y, y_torch.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden_sizes", [(H,), (5, 2, 3)])
@pytest.mark.parametrize("head", [True, False])
def test_gru_round_trips(rng, dtype, hidden_sizes, head):
    weights = random_gru_weights(rng, hidden_sizes, dtype=dtype, head=head)
    gru_sd, linear_sd = to_torch(weights, cell="gru")
    assert all(v.dtype == dtype and v.flags.c_contiguous for v in gru_sd.values())
    assert_weights_equal(from_torch(gru_sd, linear_sd, cell="gru"), weights)
    arrays = to_keras(weights, cell="gru")
    assert [a.shape for a in arrays[:3]] == [(I, 3 * hidden_sizes[0]), (hidden_sizes[0], 3 * hidden_sizes[0]),
                                              (2, 3 * hidden_sizes[0])]
    assert_weights_equal(from_keras(arrays, cell="gru"), weights)


def test_keras_gru_list_is_numlstm_layout(torch, rng):
    """A PyTorch GRU through to_keras (a Keras GRU(reset_after=True) weight list) computes the same."""
    gru, head = torch_gru_model(torch)
    arrays = to_keras(from_torch(gru, head, cell="gru"), cell="gru")
    x = rng.standard_normal((2, 3, I))
    with torch.no_grad():
        h_torch, _ = gru(torch.from_numpy(x))
    h, _, _ = numlstm_gru_forward(from_keras(arrays, cell="gru"), x)
    np.testing.assert_allclose(h, h_torch.numpy(), rtol=0, atol=1e-12)


class TestBadGRU:
    def test_unknown_cell(self, rng):
        for convert in (lambda: from_torch(lstm_state(), cell="rnn"), lambda: from_keras([], cell="GRU"),
                        lambda: to_torch(random_gru_weights(rng), cell=None),
                        lambda: to_keras(random_gru_weights(rng), cell=["gru"])):
            with pytest.raises(ValueError, match=r"cell must be 'lstm' or 'gru', got"):
                convert()

    def test_lstm_weights_as_gru_and_back(self, rng):
        with pytest.raises(ValueError, match=r"weight_hh_l0'\] has shape \(16, 4\); expected \(3\*hidden, hidden\) "
                                             r"= \(12, 4\)\. Pass the state_dict\(\) of a torch\.nn\.GRU .* Its shape "
                                             r"is that of LSTM weights: pass cell='lstm'\."):
            from_torch(lstm_state(), cell="gru")
        gru_sd, _ = to_torch(random_gru_weights(rng), cell="gru")
        with pytest.raises(ValueError, match=r"weight_hh_l0'\] has shape \(12, 4\); expected \(4\*hidden, hidden\) "
                                             r"= \(12, 3\)\. .* Its shape is that of GRU weights: pass cell='gru'\."):
            from_torch(gru_sd)
        with pytest.raises(ValueError, match=r"\(recurrent_kernel of GRU layer 0\) has shape \(4, 16\); expected "
                                             r"\(hidden, 3\*hidden\) = \(4, 12\)\. weight_list should be "
                                             r"model\.get_weights\(\) of a Keras Sequential of GRU layers "
                                             r"\(reset_after=True\).* pass cell='lstm'"):
            from_keras(to_keras(random_weights(rng)), cell="gru")
        with pytest.raises(ValueError, match=r"weights\['layers'\]\[0\]\['U'\] has shape \(4, 12\); expected "
                                             r"\(hidden, 4\*hidden\).* pass cell='gru'"):
            to_keras(random_gru_weights(rng))

    def test_keras_reset_after_false(self, rng):
        arrays = to_keras(random_gru_weights(rng, (H,)), cell="gru")
        arrays[2] = arrays[2][0]
        with pytest.raises(ValueError, match=r"\(bias of GRU layer 0\) has shape \(12,\); expected \(2, 3\*hidden\) "
                                             r"= \(2, 12\)\. A GRU bias of one row \(3\*hidden,\) is that of a Keras "
                                             r"GRU with reset_after=False.*reset_after=True"):
            from_keras(arrays, cell="gru")

    def test_wrong_bias_in_weights(self, rng):
        weights = random_gru_weights(rng)
        weights["layers"][1]["b"] = weights["layers"][1]["b"].sum(0)
        with pytest.raises(ValueError, match=r"weights\['layers'\]\[1\]\['b'\] has shape \(12,\); expected "
                                             r"\(2, 3\*hidden\) = \(2, 12\)"):
            to_torch(weights, cell="gru")

    def test_bidirectional(self, torch):
        gru = torch.nn.GRU(I, H, bidirectional=True).double()
        with pytest.raises(ValueError, match=r"_reverse'.*bidirectional GRUs are not supported.*nn\.GRU built "
                                             r"with bidirectional=False"):
            from_torch(gru, cell="gru")

    def test_not_a_mapping(self):
        with pytest.raises(TypeError, match=r"lstm_state_dict must be a mapping such as nn\.GRU\.state_dict\(\)"):
            from_torch([np.zeros((12, 3))], cell="gru")
