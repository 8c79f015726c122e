"""`lstm.no_builtin` sees what runs, not only what is written (issue 13, item 1): each way of hiding the real
recurrent layer that once scored 100 fails, naming its evidence; the honest reference passes, watched.

Each cheat keeps the lab's parameters (so the probe can set its weights, as a real cheat would) and hands
them to PyTorch's own LSTM in the forward pass.
"""
from __future__ import annotations

import base64

import pytest
from advkit import assert_graded, check_in_process, class_cell, reference, require_sandbox, write

pytestmark = pytest.mark.kernel  # every notebook is graded in a real (sandboxed) kernel

# The forward pass of every cheat: the lab's weights, in PyTorch's gate order (i, f, g, o), run by `RUN`.
_CHEAT_FORWARD = '''
    def forward(self, x):
        H = self.hidden_size
        w_ih = torch.cat([self.W_xi, self.W_xf, self.W_xc, self.W_xo], dim=1).t()
        w_hh = torch.cat([self.W_hi, self.W_hf, self.W_hc, self.W_ho], dim=1).t()
        b = torch.cat([self.b_i, self.b_f, self.b_c, self.b_o])
        z = torch.zeros(1, x.shape[1], H, dtype=x.dtype, device=x.device)
        h = RUN
        return self.fc(h[-1])
'''
_TORCH_LSTM_ARGS = "(x, (z, z), [w_ih, w_hh, b, torch.zeros_like(b)], True, 1, 0.0, False, False, False)"
_HELPER = f"_helper = lambda x, z, w_ih, w_hh, b: torch.lstm{_TORCH_LSTM_ARGS}"
_ROUTES = {
    # nn.LSTM reached by a name built at run time, run with the lab's weights through functional_call
    "getattr_functional_call": ("", "torch.func.functional_call(getattr(torch.nn, 'LS' + 'TM')(self.input_size, H)"
                                    ".to(x.dtype), {'weight_ih_l0': w_ih, 'weight_hh_l0': w_hh, 'bias_ih_l0': b, "
                                    "'bias_hh_l0': torch.zeros_like(b)}, (x, (z, z)))[1][0]", ""),
    # a helper that exists only after exec of a base64 string
    "exec_base64": ("import base64\nexec(base64.b64decode(" + repr(base64.b64encode(_HELPER.encode())) + ").decode())\n",
                    "_helper(x, z, w_ih, w_hh, b)[1]", ""),
    # a module-level helper in another cell calling torch.lstm
    "helper_in_another_cell": ("", "_helper(x, z, w_ih, w_hh, b)[1]", ""),
    # torch under another name
    "torch_alias": ("T = torch\n", f"T.lstm{_TORCH_LSTM_ARGS}[1]", ""),
    # a class cell that cannot be parsed statically: it ends in an IPython-only line
    "ipython_only_line": ("", f"torch.lstm{_TORCH_LSTM_ARGS}[1]", "\nlen?"),
}


@pytest.fixture(autouse=True)
def _sandbox_is_active() -> None:
    require_sandbox()


def _cheat(route: str):
    before, run, after = _ROUTES[route]
    nb = reference()
    cell = nb.cells[class_cell(nb)]
    head = cell.source[: cell.source.index("    def forward(self, x):")]
    cell.source = before + head + _CHEAT_FORWARD.replace("RUN", run) + after
    if route == "helper_in_another_cell":
        import nbformat

        nb.cells.insert(class_cell(nb), nbformat.v4.new_code_cell(_HELPER))
    return nb


@pytest.mark.parametrize("route", sorted(_ROUTES))
def test_a_hidden_builtin_lstm_fails_no_builtin_with_its_evidence(contained, quick_rubric, route):
    checked = check_in_process(write(_cheat(route), contained.parent, f"hidden_builtin_{route}"), quick_rubric)
    assert_graded(checked)
    check = next(c for c in checked.result["checks"] if c["id"] == "lstm.no_builtin")
    assert check["status"] == "failed", check
    details = check["details"]
    assert details["runtime_observed"] and "torch.lstm" in details["runtime"], details
    assert "ran during forward" in check["message"]
    if route == "helper_in_another_cell":
        assert "torch.lstm" in details["elsewhere"] and "another cell" in check["message"]
    assert checked.statuses["rnn.no_builtin"] == "passed"  # the RNN wrote its own recurrence


def test_the_honest_reference_is_watched_and_passes(contained, quick_rubric):
    checked = check_in_process(write(reference(), contained.parent, "honest_watched"), quick_rubric)
    for prefix in ("rnn", "lstm"):
        check = next(c for c in checked.result["checks"] if c["id"] == f"{prefix}.no_builtin")
        assert check["status"] == "passed" and check["details"]["runtime_observed"], check
        assert check["details"]["runtime"] == [] and check["details"]["elsewhere"] == []
    assert checked.score == 100
