"""Audit of nn.from_torch with the sequentials PyTorch users write (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn

torch = pytest.importorskip("torch")
X = np.random.default_rng(0).normal(size=(7, 4))


def _torch_out(seq):
    with torch.no_grad():
        return seq(torch.from_numpy(X)).numpy()


@pytest.mark.parametrize(
    ("final", "output", "proba"),
    [
        (lambda: torch.nn.Softmax(dim=1), "softmax", 3),
        (lambda: torch.nn.Softmax(dim=-1), "softmax", 3),
        (lambda: torch.nn.Sigmoid(), "logistic", 1),
    ],
)
def test_a_final_softmax_or_sigmoid_is_the_output(final, output, proba):
    # a classifier ending in its output nonlinearity was refused ("activations ['ReLU',
    # 'Softmax']... between every pair of Linear layers")
    seq = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, proba), final()
    ).double()
    m = nn.from_torch(seq)
    assert m.output == output and m.activation == "relu" and m.layer_sizes == [4, 6, proba]
    np.testing.assert_allclose(m.predict_proba(X), _torch_out(seq), rtol=0, atol=1e-12)
    # logistic regression: one Linear and its sigmoid
    lr = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Sigmoid()).double()
    assert nn.from_torch(lr).output == "logistic"
    np.testing.assert_allclose(nn.from_torch(lr).predict_proba(X), _torch_out(lr), atol=1e-12)


def test_an_output_that_contradicts_the_final_module_is_refused():
    seq = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    with pytest.raises(ValueError, match="output='softmax', but the sequential ends in Sigmoid"):
        nn.from_torch(seq, output="softmax")
    with pytest.raises(ValueError, match=r"Softmax over dim=0"):
        nn.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Softmax(dim=0)))
    # without a final module the default stays softmax, and output= is honoured
    plain = torch.nn.Sequential(torch.nn.Linear(4, 2))
    assert nn.from_torch(plain).output == "softmax"
    assert nn.from_torch(plain, output="linear").output == "linear"


def test_what_is_not_a_sequential_of_linear_layers_gets_a_clear_error():
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    # was: TypeError "'Net' object is not iterable"
    with pytest.raises(TypeError, match="expected a torch.nn.Sequential.*got Net"):
        nn.from_torch(Net())
    # was: IndexError
    with pytest.raises(ValueError, match="holds no Linear layer"):
        nn.from_torch(torch.nn.Sequential())
    # was: TypeError "data type 'bfloat16' not understood"
    with pytest.raises(ValueError, match=r"bfloat16.*sequential.float\(\)"):
        nn.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 2).to(torch.bfloat16)))
