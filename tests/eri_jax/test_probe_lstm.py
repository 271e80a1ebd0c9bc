"""The probe and the MuSe LSTM against torch modules with copied weights; run-time activation switching."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eri_jax.models.lstm import MuseLSTM
from eri_jax.models.probe import ACTIVATION_NAMES, Probe, activation_index, apply_activation

torch = pytest.importorskip("torch")

TORCH_ACTIVATIONS = {
    "linear": torch.nn.Identity(),
    "relu": torch.nn.ReLU(),
    "leaky_relu": torch.nn.LeakyReLU(),
    "tanh": torch.nn.Tanh(),
    "sigmoid": torch.nn.Sigmoid(),
    "gelu": torch.nn.GELU(),
    "elu": torch.nn.ELU(),
}
forward = nnx.jit(lambda model, x, mask=None: model(x, mask))


def copy_linear(flax_linear: nnx.Linear, torch_linear: torch.nn.Linear) -> None:
    flax_linear.kernel.set_value(jnp.asarray(torch_linear.weight.detach().numpy().T))
    if torch_linear.bias is not None:
        flax_linear.bias.set_value(jnp.asarray(torch_linear.bias.detach().numpy()))


def test_activation_table_matches_torch():
    assert set(ACTIVATION_NAMES) == set(TORCH_ACTIVATIONS)  # paper Table 4
    x = np.linspace(-4, 4, 41, dtype=np.float32)
    indices = jnp.arange(len(ACTIVATION_NAMES))
    switched = jax.jit(jax.vmap(apply_activation, in_axes=(0, None)))(indices, jnp.asarray(x))
    for i, name in enumerate(ACTIVATION_NAMES):
        ref = TORCH_ACTIVATIONS[name](torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(np.asarray(apply_activation(name, x)), ref, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.asarray(switched[i]), ref, atol=1e-6, err_msg=name)
    assert activation_index("gelu") == ACTIVATION_NAMES.index("gelu") and activation_index(2) == 2
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activation_index("swish")
    with pytest.raises(ValueError, match="out of range"):
        activation_index(len(ACTIVATION_NAMES))


@pytest.mark.parametrize("activation", ["relu", "gelu", "elu"])
def test_probe_equals_torch(activation):
    torch.manual_seed(0)
    ref = torch.nn.Sequential(
        torch.nn.Linear(10, 6), TORCH_ACTIVATIONS[activation], torch.nn.Linear(6, 7), torch.nn.Sigmoid()
    )
    probe = Probe(10, 6, 7, activation, rngs=nnx.Rngs(0))
    copy_linear(probe.linear1, ref[0])
    copy_linear(probe.linear2, ref[2])
    x = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32) * 2
    out = forward(probe, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(out), ref(torch.from_numpy(x)).detach().numpy(), atol=1e-6)
    assert out.shape == (4, 7) and float(out.min()) > 0 and float(out.max()) < 1


def test_probes_with_different_activations_in_one_vmapped_program():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32) * 2)
    indices = jnp.arange(len(ACTIVATION_NAMES))

    @nnx.vmap(in_axes=(0, None))
    def make(index, key):
        return Probe(10, 6, 7, index, rngs=nnx.Rngs(key))  # same key: same weights for every probe

    probes = make(indices, jax.random.key(0))
    outs = nnx.jit(nnx.vmap(lambda p, x: p(x), in_axes=(0, None)))(probes, x)
    assert outs.shape == (len(ACTIVATION_NAMES), 4, 7)
    for i, name in enumerate(ACTIVATION_NAMES):
        single = Probe(10, 6, 7, name, rngs=nnx.Rngs(0))
        for layer in ("linear1", "linear2"):
            for var in ("kernel", "bias"):
                getattr(getattr(single, layer), var).set_value(getattr(getattr(probes, layer), var)[i])
        np.testing.assert_allclose(np.asarray(outs[i]), np.asarray(single(x)), atol=1e-6, err_msg=name)
    assert not np.allclose(np.asarray(outs[1]), np.asarray(outs[3]))


class TorchMuseLSTM(torch.nn.Module):
    """The MuSe-2022 baseline (unidirectional, n-to-1) with packed sequences for the valid lengths."""

    def __init__(self, d_in, d_out, hidden, layers):
        super().__init__()
        self.inp = torch.nn.Linear(d_in, hidden, bias=False)
        self.rnn = torch.nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.fc1 = torch.nn.Linear(hidden, hidden)
        self.fc2 = torch.nn.Linear(hidden, d_out)

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.inp(x), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.rnn(packed)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(h_n[-1]))))


def muse_pair(d_in=5, d_out=7, hidden=8, layers=3):
    torch.manual_seed(0)
    ref = TorchMuseLSTM(d_in, d_out, hidden, layers).eval()
    model = MuseLSTM(d_in, d_out, hidden=hidden, num_layers=layers, fc_hidden=hidden, rngs=nnx.Rngs(0))
    model.inp.kernel.set_value(jnp.asarray(ref.inp.weight.detach().numpy().T))
    for i, layer in enumerate(model.layers):
        for name in ("weight_ih", "weight_hh"):
            getattr(layer, name.replace("weight", "w")).set_value(
                jnp.asarray(getattr(ref.rnn, f"{name}_l{i}").detach().numpy().T)
            )
        for name in ("bias_ih", "bias_hh"):
            getattr(layer, name.replace("bias", "b")).set_value(
                jnp.asarray(getattr(ref.rnn, f"{name}_l{i}").detach().numpy())
            )
    copy_linear(model.fc1, ref.fc1)
    copy_linear(model.fc2, ref.fc2)
    model.eval()
    return ref, model


def test_lstm_equals_torch_lstm_with_packed_lengths():
    ref, model = muse_pair()
    x = np.random.default_rng(0).normal(size=(3, 6, 5)).astype(np.float32)
    lengths = np.array([6, 4, 1])
    mask = np.arange(6)[None, :] < lengths[:, None]
    with torch.no_grad():
        expected = ref(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
        full = ref(torch.from_numpy(x), torch.tensor([6, 6, 6])).numpy()
    np.testing.assert_allclose(np.asarray(forward(model, jnp.asarray(x), jnp.asarray(mask))), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(forward(model, jnp.asarray(x))), full, atol=1e-5)
    assert not np.allclose(expected[1:], full[1:], atol=1e-4)  # the mask matters


def test_lstm_skips_masked_steps_inside_a_clip():
    _, model = muse_pair()
    x = np.random.default_rng(1).normal(size=(1, 6, 5)).astype(np.float32)
    mask = np.array([[1, 0, 1, 1, 0, 1]], bool)
    gapped = forward(model, jnp.asarray(x), jnp.asarray(mask))
    compact = forward(model, jnp.asarray(x[:, mask[0]]), None)  # the valid steps only
    np.testing.assert_allclose(np.asarray(gapped), np.asarray(compact), atol=1e-6)


def test_lstm_dropout_train_eval_and_bad_inputs():
    model = MuseLSTM(5, 7, hidden=8, num_layers=2, fc_hidden=8, rngs=nnx.Rngs(params=0, dropout=1))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 6, 5)).astype(np.float32))
    model.train()
    a, b = forward(model, x), forward(model, x)
    assert not np.allclose(np.asarray(a), np.asarray(b))
    model.eval()
    np.testing.assert_array_equal(np.asarray(forward(model, x)), np.asarray(forward(model, x)))
    with pytest.raises(ValueError, match=r"\[batch, time, 5\]"):
        model(jnp.ones((4, 5)))
    with pytest.raises(ValueError, match="mask shape"):
        model(x, jnp.ones((4, 5), bool))


def test_bfloat16_compute_keeps_float32_params():
    _, f32 = muse_pair()
    bf16 = MuseLSTM(5, 7, hidden=8, num_layers=3, fc_hidden=8, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    nnx.update(bf16, nnx.state(f32, nnx.Param))
    bf16.eval()
    dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(nnx.state(bf16, nnx.Param))}
    assert dtypes == {jnp.dtype(jnp.float32)}
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 6, 5)).astype(np.float32))
    out, ref = forward(bf16, x), forward(f32, x)
    assert out.dtype == jnp.float32 and not np.array_equal(np.asarray(out), np.asarray(ref))
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=2e-2)
    probe = Probe(5, 4, 7, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    assert probe.linear1(jnp.ones((1, 5))).dtype == jnp.bfloat16
