"""Similarity report: copies are flagged, independent work and the template are not."""
from __future__ import annotations

import random
import time

import nbformat
import pytest

from grader.messages import LANGUAGES, render
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK
from grader.similarity import (
    DEFAULT_THRESHOLD,
    K,
    W,
    class_sources,
    find_similar,
    normalise,
    similar_pairs_for_files,
    winnow,
)

# The reference's classes rewritten the way a copier would: every name changed, the layout
# reflowed, comments and docstrings replaced or removed, `super()` call kept.
RENAMED_RNN = '''class CustomRNN(nn.Module):
    # my own rnn!!
    def __init__(self, n_in, n_hid, n_out):
        super(CustomRNN, self).__init__()
        self.n_in = n_in; self.n_hid = n_hid
        self.n_out = n_out
        self.A = nn.Parameter(torch.empty(n_in, n_hid))
        self.B = nn.Parameter(torch.empty(n_hid,
                                          n_hid))
        self.bias = nn.Parameter(torch.zeros(n_hid))
        self.C = nn.Parameter(torch.empty(n_hid, n_out))   # readout
        self.c_bias = nn.Parameter(torch.zeros(n_out))
        nn.init.xavier_uniform_(self.A)
        nn.init.xavier_uniform_(self.B)
        nn.init.xavier_uniform_(self.C)

    def forward(self, inp, h=None):
        T, N, _ = inp.shape
        if h is None:
            h = torch.zeros(N, self.n_hid).to(inp.device)
        for step in range(T):
            cur = inp[step]
            h = torch.tanh(cur @ self.A
                           + h @ self.B + self.bias)
        out = h @ self.C + self.c_bias
        return out
'''

RENAMED_LSTM = '''class CustomLSTM(nn.Module):
    """LSTM written from scratch (honest)."""
    def __init__(self, d_in, d_h, d_out):
        super(CustomLSTM, self).__init__()
        self.d_in = d_in
        self.d_h = d_h
        self.Uf = nn.Parameter(torch.empty(d_in, d_h)); self.Vf = nn.Parameter(torch.empty(d_h, d_h))
        self.bf = nn.Parameter(torch.zeros(d_h))
        self.Ui = nn.Parameter(torch.empty(d_in, d_h))
        self.Vi = nn.Parameter(torch.empty(d_h, d_h))
        self.bi = nn.Parameter(torch.zeros(d_h))
        self.Uc = nn.Parameter(torch.empty(d_in, d_h))
        self.Vc = nn.Parameter(torch.empty(d_h, d_h))
        self.bc = nn.Parameter(torch.zeros(d_h))
        self.Uo = nn.Parameter(torch.empty(d_in, d_h))
        self.Vo = nn.Parameter(torch.empty(d_h, d_h))
        self.bo = nn.Parameter(torch.zeros(d_h))
        self.head = nn.Linear(d_h, d_out)
        self.init_weights()

    def init_weights(self):
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, seq):
        L, B, _ = seq.shape
        hid = torch.zeros(B, self.d_h).to(seq.device)
        mem = torch.zeros(B, self.d_h).to(seq.device)
        for k in range(L):
            xk = seq[k]
            forget = torch.sigmoid(xk @ self.Uf + hid @ self.Vf + self.bf)
            inp = torch.sigmoid(xk @ self.Ui + hid @ self.Vi + self.bi)
            cand = torch.tanh(
                xk @ self.Uc + hid @ self.Vc + self.bc
            )
            mem = forget * mem + inp * cand
            outg = torch.sigmoid(xk @ self.Uo + hid @ self.Vo + self.bo)
            hid = outg * torch.tanh(mem)
        return self.head(hid)
'''

# Two LSTMs (and RNNs) written independently, both correct, in different styles.
INDEPENDENT_A = '''class CustomRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_ho = nn.Parameter(torch.empty(hidden_size, output_size))
        self.b_o = nn.Parameter(torch.zeros(output_size))
        for w in (self.W_xh, self.W_hh, self.W_ho):
            nn.init.xavier_uniform_(w)

    def step(self, x_t, h):
        return torch.tanh(torch.addmm(self.b_h, x_t, self.W_xh) + torch.mm(h, self.W_hh))

    def forward(self, x, hidden_state=None):
        h = hidden_state if hidden_state is not None else x.new_zeros(x.size(1), self.hidden_size)
        for x_t in x.unbind(0):
            h = self.step(x_t, h)
        return torch.addmm(self.b_o, h, self.W_ho)


class Gate(nn.Module):
    """One gate: an affine map of the input and of the hidden state."""

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.from_x = nn.Parameter(torch.empty(n_in, n_hidden))
        self.from_h = nn.Parameter(torch.empty(n_hidden, n_hidden))
        self.bias = nn.Parameter(torch.zeros(n_hidden))

    def forward(self, x_t, h):
        return torch.addmm(self.bias, x_t, self.from_x) + torch.mm(h, self.from_h)


class CustomLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.forget, self.inp, self.cand, self.out = (Gate(input_size, hidden_size) for _ in range(4))
        self.fc = nn.Linear(hidden_size, output_size)
        for name, p in self.named_parameters():
            if p.ndim == 2:
                nn.init.xavier_uniform_(p)

    def forward(self, x):
        batch = x.size(1)
        h = x.new_zeros(batch, self.hidden_size)
        c = x.new_zeros(batch, self.hidden_size)
        for x_t in x.unbind(0):
            f = self.forget(x_t, h).sigmoid()
            i = self.inp(x_t, h).sigmoid()
            g = self.cand(x_t, h).tanh()
            o = self.out(x_t, h).sigmoid()
            c = torch.addcmul(f * c, i, g)
            h = o * c.tanh()
        return self.fc(h)
'''

INDEPENDENT_B = '''class CustomRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(CustomRNN, self).__init__()
        self.hidden_size = hidden_size
        # one matrix for [x, h] concatenated
        self.W = nn.Parameter(torch.empty(input_size + hidden_size, hidden_size))
        self.b = nn.Parameter(torch.zeros(hidden_size))
        self.V = nn.Parameter(torch.empty(hidden_size, output_size))
        self.c = nn.Parameter(torch.zeros(output_size))
        nn.init.xavier_uniform_(self.W)
        nn.init.xavier_uniform_(self.V)

    def forward(self, x, hidden_state=None):
        T = x.shape[0]
        if hidden_state is None:
            hidden_state = torch.zeros((x.shape[1], self.hidden_size), device=x.device)
        t = 0
        while t < T:
            joint = torch.cat([x[t], hidden_state], dim=1)
            hidden_state = torch.tanh(joint @ self.W + self.b)
            t += 1
        return hidden_state @ self.V + self.c


class CustomLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(CustomLSTM, self).__init__()
        self.hidden_size = hidden_size
        H = hidden_size
        # all four gates stacked: columns [f | i | g | o]
        self.W_x = nn.Parameter(torch.empty(input_size, 4 * H))
        self.W_h = nn.Parameter(torch.empty(H, 4 * H))
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.fc = nn.Linear(H, output_size)
        with torch.no_grad():
            for k in range(4):
                nn.init.xavier_uniform_(self.W_x[:, k * H:(k + 1) * H])
                nn.init.xavier_uniform_(self.W_h[:, k * H:(k + 1) * H])

    def forward(self, x):
        seq_len = x.shape[0]
        state = [torch.zeros(x.shape[1], self.hidden_size, device=x.device)] * 2
        outputs = []
        for t in range(seq_len):
            h, c = state
            z = x[t] @ self.W_x + h @ self.W_h + self.bias
            f, i, g, o = z.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            state = [h, c]
            outputs.append(h)
        return self.fc(outputs[-1])
'''


def _read(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def reference() -> nbformat.NotebookNode:
    return _read(REFERENCE_NOTEBOOK)


@pytest.fixture(scope="module")
def template() -> nbformat.NotebookNode:
    return _read(TEMPLATE_NOTEBOOK)


def _with_classes(nb: nbformat.NotebookNode, *sources: str) -> nbformat.NotebookNode:
    """The notebook with its RNN and LSTM cells replaced by `sources` (one cell each)."""
    nb = nbformat.from_dict(nb)
    cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and ("class CustomRNN(" in c.source or "class CustomLSTM(" in c.source)]
    for i, source in zip(cells, sources):
        nb.cells[i].source = source
    for i in cells[len(sources):]:
        nb.cells[i].source = "# moved above"
    return nb


def _pair_ids(pairs) -> set[frozenset[str]]:
    return {frozenset((p.a, p.b)) for p in pairs}


def test_normalising_ignores_names_layout_and_comments():
    one = "def f(a, b):\n    # add\n    return a + b * 2\n"
    two = 'def g(x,\n      y):\n    """Sum."""\n    return x+y*3  # scaled\n'
    assert [t.text for t in normalise(one)] == [t.text for t in normalise(two)]


def test_winnowing_keeps_a_fingerprint_in_every_window():
    hashes = [random.Random(1).randrange(1000) for _ in range(200)]
    chosen = set(winnow(hashes, 8))
    assert all(chosen & set(range(s, s + 8)) for s in range(len(hashes) - 8 + 1))


def test_template_class_skeletons_are_found_although_the_cells_do_not_parse(template):
    assert set(class_sources(template)) == {"CustomRNN", "CustomLSTM"}


def test_renamed_reformatted_recommented_copy_is_flagged(reference, template):
    copy = _with_classes(reference, RENAMED_RNN, RENAMED_LSTM)
    pairs = find_similar({"alice": reference, "bob": copy}, template)
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair.a, pair.b) == ("alice", "bob")
    assert set(pair.classes) == {"CustomRNN", "CustomLSTM"}
    assert pair.score >= 0.8
    data = pair.to_dict()
    assert {"a", "b", "score", "classes", "note", "matches"} <= set(data)
    lstm = next(m for m in data["matches"] if m["name"] == "CustomLSTM")
    assert lstm["a_lines"] and lstm["b_lines"]
    lstm_cell = next(i for i, c in enumerate(copy.cells) if "class CustomLSTM(" in c.source)
    assert {r["cell"] for r in lstm["b_lines"]} == {lstm_cell}


def test_independent_correct_solutions_are_not_flagged(reference, template):
    a = _with_classes(reference, INDEPENDENT_A)
    b = _with_classes(reference, INDEPENDENT_B)
    assert set(class_sources(a)) == set(class_sources(b)) == {"CustomRNN", "CustomLSTM"}
    assert find_similar({"a": a, "b": b}, template) == []
    # and neither looks like the reference
    assert find_similar({"a": a, "b": b, "ref": reference}, template) == []


def test_untouched_templates_are_not_flagged(template):
    assert find_similar({"t1": template, "t2": template, "t3": template}, template) == []


def test_the_reference_shared_by_two_students_is_flagged(reference, template):
    pairs = find_similar({"s1": reference, "s2": reference, "t": template}, template)
    assert _pair_ids(pairs) == {frozenset(("s1", "s2"))}
    assert pairs[0].score == 1.0


def test_code_forced_on_everyone_is_ignored(reference, template):
    """Twelve students with the canonical solution: passages that common are not evidence."""
    class_of_12 = {f"s{i:02d}": reference for i in range(12)}
    assert find_similar(class_of_12, template, common_limit=10) == []


def test_note_is_in_both_languages(reference, template):
    for lang in LANGUAGES:
        pair = find_similar({"s1": reference, "s2": reference}, template, lang=lang)[0]
        assert pair.note and "similarity.note" not in pair.note
        assert render(pair.note_msg, lang) == pair.note


def _expression(rng: random.Random, depth: int) -> str:
    """A random expression, so that synthetic classes differ in structure, not only in names."""
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(["h", "x[t]", "self.w", "1.5", "c"])
    kind = rng.randrange(4)
    if kind == 0:
        return f"({_expression(rng, depth - 1)} {rng.choice('+-*/@')} {_expression(rng, depth - 1)})"
    if kind == 1:
        args = ", ".join(_expression(rng, depth - 1) for _ in range(rng.randint(1, 3)))
        return f"torch.{rng.choice(['tanh', 'sigmoid', 'cat', 'stack'])}({args})"
    if kind == 2:
        return f"{_expression(rng, depth - 1)}[{rng.randint(0, 3)}:]"
    return f"-{_expression(rng, depth - 1)}"


def _synthetic_lstm(rng: random.Random) -> str:
    lines = ["class CustomLSTM(nn.Module):", "    def forward(self, x):", "        h = c = x[0]",
             "        for t in range(len(x)):"]
    for _ in range(rng.randint(6, 14)):
        indent = "            "
        if rng.random() < 0.2:
            lines.append(f"{indent}if {_expression(rng, 2)} > 0:")
            indent += "    "
        lines.append(f"{indent}{rng.choice('hc')} = {_expression(rng, 4)}")
    lines.append("        return h")
    return "\n".join(lines)


def test_scales_to_a_large_class(template):
    rng = random.Random(5)
    cell = nbformat.v4.new_code_cell
    subs = {}
    for n in range(300):
        nb = nbformat.v4.new_notebook()
        nb.cells = [cell("import torch"), cell(_synthetic_lstm(rng))]
        subs[f"s{n:03d}"] = nb
    planted = nbformat.v4.new_notebook()
    planted.cells = [cell("import torch"), cell(subs["s007"].cells[1].source.replace("h =", "hid =").replace("c =", "cell ="))]
    subs["copier"] = planted
    began = time.monotonic()
    pairs = find_similar(subs, template)
    print(f"\n{len(subs)} submissions compared in {time.monotonic() - began:.2f} s, {len(pairs)} pairs flagged")
    assert frozenset(("s007", "copier")) in _pair_ids(pairs)


def test_defaults_are_the_documented_ones():
    assert K == 15 and W == 10 and DEFAULT_THRESHOLD == 0.5


def test_batch_files_give_the_summary_dicts(tmp_path):
    for name in ("s1", "s2"):
        (tmp_path / f"{name}.ipynb").write_bytes(REFERENCE_NOTEBOOK.read_bytes())
    (tmp_path / "junk.ipynb").write_text("not a notebook", encoding="utf-8")
    files = {p.stem: p for p in tmp_path.glob("*.ipynb")}
    pairs = similar_pairs_for_files(files, lang="en")
    assert [(p["a"], p["b"]) for p in pairs] == [("s1", "s2")]
    assert pairs[0]["note_i18n"]["key"] == "similarity.note"
