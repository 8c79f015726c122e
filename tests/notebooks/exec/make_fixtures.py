"""Regenerate the fixture notebooks of tests/test_execute_*.py: python make_fixtures.py

Each notebook is named by the outcome the tests expect from running it. The
metadata names a kernel that does not exist here, as ModelArts/OpenI notebooks do.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
FOREIGN_KERNEL = {"kernelspec": {"name": "python3-modelarts-npu", "display_name": "PyTorch-2.1.0 NPU", "language": "python"}}

# Adam then SGD on a small LSTM; the kernel test runs the same text in its own process to compare the loss.
OPTIMIZER_STEPS = """import sys
import torch
torch.manual_seed(0)
model = torch.nn.LSTM(13, 8)
head = torch.nn.Linear(8, 3)
params = list(model.parameters()) + list(head.parameters())
x, y = torch.randn(20, 4, 13), torch.tensor([0, 1, 2, 1])
for opt in (torch.optim.Adam(params, lr=0.01), torch.optim.SGD(params, lr=0.1)):
    for _ in range(3):
        out, _ = model(x)
        loss = torch.nn.functional.cross_entropy(head(out[-1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.load_state_dict(opt.state_dict())"""

MINI_LAB = [
    "!pip install librosa==0.11.0 cffi==1.17.1",
    "!unzip -q -n data.zip",
    """import os
import time
import pandas as pd
import librosa
import numpy as np
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch_npu

from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm
from torch.nn.utils.rnn import pad_sequence
from IPython.display import clear_output, Audio""",
    """class AudioDataset(Dataset):
    def __init__(self, dataframe, data_dir, n_mfcc=13):
        self.dataframe = dataframe
        self.data_dir = data_dir
        self.n_mfcc = n_mfcc

    def __len__(self):
        return len(self.dataframe)

    def __getitem__(self, idx):
        row = self.dataframe.iloc[idx]
        y, sr = librosa.load(os.path.join(self.data_dir, row['filename']), sr=None)
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=self.n_mfcc)
        label = {'cat': 0, 'dog': 1, 'bird': 2}[row['class']]
        return torch.tensor(mfcc.T, dtype=torch.float32), label


def collate_fn(batch):
    features = [item[0] for item in batch]
    labels = torch.tensor([item[1] for item in batch], dtype=torch.long)
    return pad_sequence(features, batch_first=True), labels""",
    """dataset_dir = "data"
train_df = pd.read_csv(f"{dataset_dir}/train.csv")
test_df = pd.read_csv(f"{dataset_dir}/test.csv")
train_loader = DataLoader(AudioDataset(train_df, f"{dataset_dir}/train"), batch_size=4, shuffle=True, collate_fn=collate_fn)
test_loader = DataLoader(AudioDataset(test_df, f"{dataset_dir}/test"), batch_size=4, shuffle=False, collate_fn=collate_fn)
train_df.head()""",
    """class CustomRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_ho = nn.Parameter(torch.empty(hidden_size, output_size))
        self.b_o = nn.Parameter(torch.zeros(output_size))
        nn.init.xavier_uniform_(self.W_xh)
        nn.init.xavier_uniform_(self.W_hh)
        nn.init.xavier_uniform_(self.W_ho)

    def forward(self, x, hidden_state=None):
        seq_len, batch_size, _ = x.shape
        if hidden_state is None:
            hidden_state = torch.zeros(batch_size, self.hidden_size).to(x.device)
        for t in range(seq_len):
            hidden_state = torch.tanh(x[t] @ self.W_xh + hidden_state @ self.W_hh + self.b_h)
        return hidden_state @ self.W_ho + self.b_o""",
    """input_size = 13
hidden_size = 32
output_size = 3
learning_rate = 0.005
num_epochs = 50

device = torch.device('npu')
torch_npu.npu.set_device(0)
device""",
    """model = CustomRNN(input_size, hidden_size, output_size).to(device)
criterion = nn.CrossEntropyLoss().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)""",
    """losses = []
time_start = time.time()
for epoch in range(num_epochs):
    model.train()
    total_loss = 0
    for features, labels in train_loader:
        features, labels = features.to(device), labels.to(device)
        features = features.permute(1, 0, 2)
        logits = model(features)
        loss = criterion(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    losses.append(total_loss)

    clear_output(wait=True)
    plt.figure(figsize=(8, 5))
    plt.plot(range(epoch + 1), losses, marker='.')
    plt.title("Training Loss per Epoch")
    plt.xlim(0, num_epochs)
    plt.grid()
    plt.show()

torch_npu.npu.synchronize()
time_end = time.time()
print(f"Final Loss: {total_loss:.4f}")
print(f"Training Time: {time_end - time_start:.2f} seconds, {(time_end - time_start) / epoch:.2f} s/epoch")
print(f"epochs run: {len(losses)}")""",
    """model.eval()
correct = 0
total = 0
with torch.no_grad():
    for features, labels in test_loader:
        features, labels = features.npu(), labels.to('npu:0')
        logits = model(features.permute(1, 0, 2))
        predicted = logits.argmax(dim=1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
print(f"Test Accuracy: {100 * correct / total:.2f}%")""",
]

FIXTURES: dict[str, list[str]] = {
    "mini_lab_runs_with_npu_remapped_and_epochs_capped.ipynb": MINI_LAB,
    "error_then_later_cells_run.ipynb": [
        "x = 1",
        "undefined_name + 1",
        "print('still running', x)",
    ],
    "hangs_while_true_interrupted_later_cells_run.ipynb": [
        "while True:\n    pass",
        "print('after the loop')",
    ],
    "hangs_swallowing_keyboardinterrupt_killed_by_watchdog.ipynb": [
        "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass",
        "print('never printed')",
    ],
    "dies_os_exit_later_cells_not_run.ipynb": [
        "x = 1",
        "import os\nos._exit(1)",
        "print(x)",
    ],
    "dies_killing_own_kernel_later_cells_not_run.ipynb": [
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "print('never printed')",
    ],
    "memory_bomb_becomes_memoryerror.ipynb": [
        "big = bytearray(6 * 2**30)",
        "import numpy as np\nhuge = np.ones((2**20, 2**14))",
        "print('still alive')",
    ],
    "output_flood_capped.ipynb": [
        "for i in range(100000):\n    print('flood line', i)",
        "print('small')",
    ],
    "env_has_no_grader_secrets.ipynb": [
        "import os\nprint(repr(os.environ.get('GRADER_TEST_SECRET')))\nprint(os.environ['HOME'] == os.getcwd(), os.environ['OMP_NUM_THREADS'], 'JPY_PARENT_PID' in os.environ)",
        "import torch\nprint(torch.get_num_threads())",
        "import os\nprint(os.access(os.environ['NUMBA_CACHE_DIR'], os.W_OK), os.environ['MPLBACKEND'])",
    ],
    "batch_cap_only_touches_loader_passes_in_epoch_loops.ipynb": [
        """import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm
loader = DataLoader(TensorDataset(torch.arange(40.0)), batch_size=4)  # 10 batches
counts = {}

def train_one_epoch(batches):
    k = 0
    for _ in batches:
        k += 1
    return k

for epoch in range(50):
    counts.setdefault('for', []).append(sum(1 for _ in loader))
    counts.setdefault('enumerate', []).append(max(i for i, _ in enumerate(loader)) + 1)
    counts.setdefault('tqdm', []).append(sum(1 for _ in tqdm(loader, disable=True)))
    counts.setdefault('helper', []).append(train_one_epoch(loader))
    counts.setdefault('len_iter', []).append(len(iter(loader)))
    counts.setdefault('plain_range', []).append(sum(1 for _ in range(10)))
    counts.setdefault('len_loader', []).append(len(loader))
counts['after_loop'] = sum(1 for _ in loader)
print(counts)""",
        """n = 0
for epoch in range(3):
    for _ in loader:
        n += 1
        if n == 2:
            break
    break
print(n, sum(1 for _ in loader))""",
        """for epoch in range(3):
    for _ in loader:
        raise ValueError('inside the epoch loop')""",
        "print(sum(1 for _ in loader))",
    ],
    "optimizers_step_without_importing_dynamo_compile_still_works.ipynb": [
        OPTIMIZER_STEPS + """
print(f"{loss.item():.6f}", type(sys.modules['torch._dynamo']).__name__)""",
        """double = torch.compile(lambda t: t * 2 + 1, backend="eager")
print(double(torch.ones(2)).tolist(), type(sys.modules['torch._dynamo']).__name__)
out, _ = model(x)
loss = torch.nn.functional.cross_entropy(head(out[-1]), y)
opt.zero_grad()
loss.backward()
opt.step()
print('stepped after compiling')""",
    ],
    "epoch_cap_only_touches_epoch_loops.ipynb": [
        """num_epochs = 50
counts = {}
n = 0
for epoch in range(num_epochs):
    n += 1
counts['epoch'] = n
n = 0
for i in range(num_epochs):
    n += 1
counts['i_in_num_epochs'] = n
n = 0
for e in range(50):
    n += 1
counts['plain_50'] = n
n = 0
for t in range(7):
    for features in range(3):
        n += 1
counts['nested_plain'] = n

def train(epochs):
    k = 0
    for ep, _ in enumerate(range(epochs)):
        inner = 0
        for step in range(5):
            inner += 1
        k += inner
    return k
counts['fn_epochs'] = train(10)
print(counts)""",
    ],
    "shell_escapes_skipped_rest_of_cell_runs.ipynb": [
        "%pip install numpy==1.0\nprint('after pip')",
        "%%bash\necho should-not-run > bash_ran.txt",
        "files = !ls\n!!ls\n%conda install x\n%system touch system_ran.txt\nprint('after escapes', list(files))",
        "%%sh\ntouch sh_ran.txt",
        "%%script bash\ntouch script_ran.txt",
        "import os\n!touch bang_ran.txt\nprint(sorted(f for f in os.listdir('.') if f.endswith('_ran.txt')))",
    ],
    "npu_spellings_run_on_grading_device.ipynb": [
        """import torch
import torch_npu
import torch.nn as nn
seen = []
seen.append(str(torch.device('npu')))
seen.append(str(torch.device('npu:0')))
seen.append(str(torch.device('npu', 0)))
seen.append(str(torch.ones(2).to('npu:0').device))
seen.append(str(torch.zeros(2, device='npu').device))
seen.append(str(torch.ones(2).npu().device))
seen.append(str(torch.ones(2).npu(0).device))
seen.append(str(next(nn.Linear(2, 2).npu().parameters()).device))
rank = 0
seen.append(str(torch.device(f'npu:{rank}')))
torch_npu.npu.set_device(0)
torch_npu.npu.synchronize()
seen.append(str(torch.npu.is_available()))
seen.append(str(torch.npu.device_count()))
print(seen)""",
        "print('npu in a string stays a word' if 'npu' != 'npu device' else '')",
    ],
}


def build(name: str, sources: list[str]) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell(f"# {name}")]
    cells += [nbformat.v4.new_code_cell(src) for src in sources]
    return nbformat.v4.new_notebook(cells=cells, metadata=FOREIGN_KERNEL)


def main() -> None:
    for name, sources in FIXTURES.items():
        nbformat.write(build(name, sources), HERE / name)


if __name__ == "__main__":
    main()
