"""The students' template repository (issue #7): its CI workflow, its README, and the whole thing end to end.

- The workflow's structure: triggers, runner, actions pinned to a major, publish steps that run even when the
  check fails, the paths the check writes = the paths the publish steps read, the pass mark set in one place.
- The README tells students every command the workflow runs for them, in Chinese and English.
- End to end (slow): export the repository (a real wheel build), make a clean venv, emulate the `uses:` steps
  and run every `run:` step verbatim with bash, as GitHub's runner does, on the untouched template (fails below
  the pass mark, still writes its reports) and on the reference solution (passes), with no `reference/` in reach.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.distribution.student_repo import WHEEL_DIR_NAME, build_wheel, copy_source_tree, export_student_repo
from grader.errors import BadInputError, InternalError
from grader.paths import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "student_template"
WORKFLOW = TEMPLATE_DIR / ".github" / "workflows" / "grader.yml"
README = TEMPLATE_DIR / "README.md"
REFERENCE_NOTEBOOK = PROJECT_ROOT / "reference" / "lab.ipynb"

JUNIT_PUBLISHERS = {"mikepenz/action-junit-report": "report_paths", "dorny/test-reporter": "path"}
REQUIRED_ACTIONS = {"actions/checkout": "v4", "actions/setup-python": "v5", "actions/upload-artifact": "v4"}
# Values in the workflow that only make sense on GitHub. PIP_INDEX_URL / PIP_EXTRA_INDEX_URL point pip at
# PyTorch's CPU index, which this machine cannot reach: here pip's own configuration (a local index) resolves
# the same pinned `torch==...` to the CPU build on disk. Everything else in the workflow's env is used as is.
GITHUB_ONLY_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
# What a runner's fresh shell does not have, and a test process may: another Python environment.
HOST_ONLY_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "CONDA_PREFIX")
TRACEBACK = "Traceback (most recent call last)"


# --- the workflow file -------------------------------------------------------------------------------------

def load_workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def the_job(workflow: dict[Any, Any]) -> dict[str, Any]:
    jobs = workflow["jobs"]
    assert len(jobs) == 1, f"one job expected, got {list(jobs)}"
    return next(iter(jobs.values()))


def steps_of(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return the_job(workflow)["steps"]


def action_of(step: dict[str, Any]) -> tuple[str, str] | None:
    """("owner/name", "ref") of a `uses:` step, else None."""
    if "uses" not in step:
        return None
    name, _, ref = str(step["uses"]).partition("@")
    return name, ref


def find_action_step(workflow: dict[Any, Any], names: set[str] | dict[str, str]) -> dict[str, Any]:
    found = [s for s in steps_of(workflow) if (a := action_of(s)) and a[0] in names]
    assert len(found) == 1, f"exactly one step using one of {sorted(names)} expected, got {len(found)}"
    return found[0]


def check_step(workflow: dict[Any, Any]) -> dict[str, Any]:
    found = [s for s in steps_of(workflow) if "grader check" in str(s.get("run", ""))]
    assert len(found) == 1, f"exactly one step running `grader check` expected, got {len(found)}"
    return found[0]


def check_command(workflow: dict[Any, Any]) -> list[str]:
    """The `grader check ...` command of the check step, as words (unexpanded: `$FAIL_UNDER` stays)."""
    lines = [line for line in logical_lines(check_step(workflow)["run"]) if "grader check" in line]
    assert len(lines) == 1, lines
    return shlex.split(lines[0], posix=True)


def option_value(words: list[str], option: str) -> str | None:
    for index, word in enumerate(words):
        if word == option and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


def logical_lines(script: str) -> list[str]:
    """A `run:` script's commands: continuation lines joined, blank lines and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def path_lines(value: Any) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def job_env(workflow: dict[Any, Any]) -> dict[str, str]:
    env = {str(k): str(v) for k, v in (workflow.get("env") or {}).items()}
    env.update({str(k): str(v) for k, v in (the_job(workflow).get("env") or {}).items()})
    return env


def test_triggers_push_pull_request_and_manual() -> None:
    workflow = load_workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert isinstance(triggers, dict), triggers
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers), triggers


def test_runs_on_ubuntu_with_a_time_limit() -> None:
    job = the_job(load_workflow())
    assert str(job["runs-on"]).startswith("ubuntu-"), job["runs-on"]
    assert 0 < int(job["timeout-minutes"]) <= 60


def test_every_action_is_pinned_to_a_major_version() -> None:
    workflow = load_workflow()
    actions = [a for s in steps_of(workflow) if (a := action_of(s))]
    unpinned = [f"{n}@{r}" for n, r in actions if not re.fullmatch(r"v\d+", r)]
    assert not unpinned, f"actions not pinned to a major version (@vN): {unpinned}"
    used = dict(actions)
    for name, major in REQUIRED_ACTIONS.items():
        assert used.get(name) == major, f"{name}@{major} expected, got {used.get(name)}"
    assert set(used) & set(JUNIT_PUBLISHERS), f"no JUnit publisher ({sorted(JUNIT_PUBLISHERS)}) among {sorted(used)}"


def test_steps_in_order_checkout_python_torch_grader_check_publish() -> None:
    workflow = load_workflow()
    steps = steps_of(workflow)
    index = {id(s): n for n, s in enumerate(steps)}
    checkout = find_action_step(workflow, {"actions/checkout"})
    python = find_action_step(workflow, {"actions/setup-python"})
    torch = [s for s in steps if re.search(r"pip install\b.*\btorch==", str(s.get("run", "")))]
    grader = [s for s in steps if f"pip install {WHEEL_DIR_NAME}/grader-" in str(s.get("run", ""))]
    assert len(torch) == 1, "one step installs a pinned torch (torch==X): an unpinned one pulls GBs of CUDA wheels"
    assert len(grader) == 1, f"one step installs the vendored wheel from {WHEEL_DIR_NAME}/"
    check = check_step(workflow)
    upload = find_action_step(workflow, {"actions/upload-artifact"})
    publish = find_action_step(workflow, JUNIT_PUBLISHERS)
    order = [index[id(s)] for s in (checkout, python, torch[0], grader[0], check, upload)]
    assert order == sorted(order), "checkout, setup-python, torch, grader, check, upload: in this order"
    assert index[id(publish)] > index[id(check)]


def test_publish_steps_run_even_when_the_check_fails() -> None:
    workflow = load_workflow()
    for step in (find_action_step(workflow, {"actions/upload-artifact"}), find_action_step(workflow, JUNIT_PUBLISHERS)):
        assert "always()" in str(step.get("if", "")), f"{step['uses']} needs `if: always()`"
    assert "if" not in check_step(workflow), "the check step itself must run on every push"
    assert not check_step(workflow).get("continue-on-error"), "a failing check must fail the run"


def test_the_paths_the_check_writes_are_the_paths_the_publish_steps_read() -> None:
    workflow = load_workflow()
    words = check_command(workflow)
    html, junit = option_value(words, "--html"), option_value(words, "--junit")
    assert html and junit, f"the check writes --html and --junit: {words}"
    upload = find_action_step(workflow, {"actions/upload-artifact"})
    uploaded = path_lines(upload["with"]["path"])
    assert html in uploaded, f"the HTML report {html} is not among the uploaded paths {uploaded}"
    publish = find_action_step(workflow, JUNIT_PUBLISHERS)
    key = JUNIT_PUBLISHERS[action_of(publish)[0]]
    assert path_lines(publish["with"][key]) == [junit], f"{publish['uses']} reads {publish['with'][key]}, the check writes {junit}"


def test_the_pass_mark_is_set_in_one_place_and_used_by_the_check() -> None:
    workflow = load_workflow()
    text = WORKFLOW.read_text(encoding="utf-8")
    assert len(re.findall(r"^\s*FAIL_UNDER\s*:", text, flags=re.M)) == 1, "FAIL_UNDER is defined more than once"
    env = job_env(workflow)
    assert "FAIL_UNDER" in env, "FAIL_UNDER belongs in the job's (or the workflow's) env"
    assert 0 < float(env["FAIL_UNDER"]) <= 100
    assert option_value(check_command(workflow), "--fail-under") in ("$FAIL_UNDER", "${FAIL_UNDER}")
    assert all("FAIL_UNDER" not in (s.get("env") or {}) for s in steps_of(workflow))


def test_one_torch_thread() -> None:
    assert job_env(load_workflow()).get("OMP_NUM_THREADS") == "1"


# --- the README --------------------------------------------------------------------------------------------

def readme_command_lines() -> list[list[str]]:
    """The README's commands: each line of its fenced code blocks, as words."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    return [shlex.split(line) for block in blocks for line in logical_lines(block)]


def expand(command: str, env: dict[str, str]) -> list[str]:
    """A workflow command as words, with the workflow's `$VAR`/`${VAR}` replaced by their values."""
    expanded = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), command)
    return shlex.split(expanded)


def contains_run(words: list[str], part: list[str]) -> bool:
    return any(words[i:i + len(part)] == part for i in range(len(words) - len(part) + 1))


def test_readme_shows_every_command_the_workflow_runs() -> None:
    workflow = load_workflow()
    env = job_env(workflow)
    readme = readme_command_lines()
    commands = [line for s in steps_of(workflow) if "run" in s for line in logical_lines(s["run"])]
    assert len(commands) >= 3
    missing = [c for c in commands if not any(contains_run(words, expand(c, env)) for words in readme)]
    assert not missing, f"README.md does not show these workflow commands (with FAIL_UNDER etc. filled in): {missing}"


def test_readme_is_in_chinese_and_english() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 100, "too little Chinese"
    assert len(re.findall(r"\b(the|and|you|your|to)\b", text)) > 20, "too little English"
    for needed in ("grader check", f"{WHEEL_DIR_NAME}/grader-", "FAIL_UNDER", "report.html"):
        assert needed in text, needed


# --- grader/distribution/student_repo.py: fast parts --------------------------------------------------------------------

def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@t"))


def test_only_tracked_files_are_copied_for_the_build(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "kept.py").write_text("x = 1\n")
    (repo / "pkg" / "gone.py").write_text("x = 2\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "pkg/kept.py", "pkg/gone.py")
    (repo / "pkg" / "gone.py").unlink()  # deleted in the working tree, still in the index
    (repo / "pkg" / "untracked.py").write_text("secret = 1\n")
    (repo / "build" / "lib" / "pkg").mkdir(parents=True)
    (repo / "build" / "lib" / "pkg" / "stale.py").write_text("stale = 1\n")
    copied = copy_source_tree(tmp_path / "copy", repo)
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) == ["pkg/kept.py"]


def test_a_tree_outside_git_is_copied_without_build_leftovers(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for rel in ("pkg/a.py", "build/lib/pkg/a.py", ".venv/bin/python", "pkg/__pycache__/a.pyc", "x.egg-info/PKG-INFO",
                "test-artifacts/t.txt", "demo-out/r.html", "dist/old.whl"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("")
    copied = copy_source_tree(tmp_path / "copy", tree)
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) == ["pkg/a.py"]


def test_a_failing_build_is_an_internal_error_with_pips_output(tmp_path: Path) -> None:
    tree = tmp_path / "broken"
    tree.mkdir()
    (tree / "pyproject.toml").write_text("[project\nname = \n")
    with pytest.raises(InternalError) as failure:
        build_wheel(tmp_path / "out", source_root=tree)
    assert failure.value.details, "pip's output should come with the error"


def test_a_build_outside_a_source_checkout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        build_wheel(tmp_path / "out", source_root=tmp_path)


def test_export_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(BadInputError):
        export_student_repo(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# --- end to end: the exported repository in a clean venv, steps as GitHub runs them -------------------------

@dataclass
class StepRun:
    name: str
    rc: int | None  # None: a `uses:` step, emulated
    seconds: float
    output: str = ""


@dataclass
class CiRun:
    workdir: Path
    steps: list[StepRun] = field(default_factory=list)

    def step(self, needle: str) -> StepRun:
        return next(s for s in self.steps if needle in s.name)

    def describe(self) -> str:
        return "\n".join(f"--- {s.name}: rc={s.rc} ({s.seconds:.1f} s)\n{s.output[-3000:]}" for s in self.steps)


@dataclass
class Machine:
    """The runner: a clean venv (setup-python's interpreter) and a fresh grader cache."""

    venv: Path
    cache: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def runner_env(machine: Machine, workflow: dict[Any, Any], step: dict[str, Any]) -> dict[str, str]:
    host_venv_bins = {str(PROJECT_ROOT / ".venv" / "bin"), str(Path(sys.prefix) / "bin")}
    env = {k: v for k, v in os.environ.items() if k not in HOST_ONLY_ENV}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in host_venv_bins]
    env["PATH"] = os.pathsep.join([str(machine.bin), *path])  # what setup-python does: its Python first
    env.update(job_env(workflow))
    env.update({str(k): str(v) for k, v in (step.get("env") or {}).items()})
    for name in GITHUB_ONLY_ENV:
        env.pop(name, None)
    env.update(CI="true", GITHUB_ACTIONS="true", GRADER_CACHE_DIR=str(machine.cache))
    return env


def run_workflow(machine: Machine, workdir: Path) -> CiRun:
    """Every step of the workflow in `workdir`: `run:` verbatim with GitHub's bash flags, `uses:` emulated."""
    workflow = load_workflow()
    run = CiRun(workdir)
    failed = False
    for step in steps_of(workflow):
        name = str(step.get("name") or step.get("uses") or step.get("run"))
        condition = str(step.get("if", ""))
        if failed and "always()" not in condition:
            run.steps.append(StepRun(name, None, 0.0, "skipped: an earlier step failed"))
            continue
        action = action_of(step)
        env = runner_env(machine, workflow, step)
        if action is not None:
            if action[0] == "actions/checkout":
                assert (workdir / "lab.ipynb").is_file()  # the exported repository is the checkout
            elif action[0] == "actions/setup-python":
                assert shutil.which("python", path=env["PATH"]) == str(machine.bin / "python")
            elif action[0] not in ("actions/upload-artifact", *JUNIT_PUBLISHERS):
                pytest.fail(f"the test does not know how to emulate {step['uses']}")
            run.steps.append(StepRun(name, None, 0.0))  # upload/publish: their inputs are checked by the tests
            continue
        script = workdir.parent / f".step-{len(run.steps)}.sh"
        script.write_text(str(step["run"]), encoding="utf-8")
        started = time.monotonic()
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=workdir,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        run.steps.append(StepRun(name, done.returncode, time.monotonic() - started, done.stdout))
        failed = failed or done.returncode != 0
    return run


def clean_machine(root: Path) -> Machine:
    """A runner in `root`: a venv that sees none of this environment's packages."""
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, capture_output=True)
    cfg = (root / "venv" / "pyvenv.cfg").read_text()
    assert re.search(r"include-system-site-packages\s*=\s*false", cfg), cfg
    return Machine(root / "venv", root / "cache")


def solved_repository(exported: Path, workdir: Path) -> Path:
    """A copy of the exported repository at `workdir` (without an earlier run's reports), solved by the reference."""
    shutil.copytree(exported, workdir, ignore=shutil.ignore_patterns("grader-report"))
    shutil.copy2(REFERENCE_NOTEBOOK, workdir / "lab.ipynb")  # the student's own work, in the student's folder
    return workdir


# How long each of these steps takes: bench/student_repo_ci.py runs them and prints the figures.
@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    return clean_machine(tmp_path_factory.mktemp("runner"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_student_repo(tmp_path_factory.mktemp("export") / "lab-repo")


@pytest.fixture(scope="module")
def template_run(machine: Machine, exported: Path) -> CiRun:
    return run_workflow(machine, exported)


@pytest.fixture(scope="module")
def reference_run(machine: Machine, exported: Path, template_run: CiRun,
                  tmp_path_factory: pytest.TempPathFactory) -> CiRun:
    return run_workflow(machine, solved_repository(exported, tmp_path_factory.mktemp("solved") / "lab-repo"))


def junit_of(run: CiRun) -> tuple[ET.Element, dict[str, str]]:
    workflow = load_workflow()
    junit = run.workdir / option_value(check_command(workflow), "--junit")
    assert junit.is_file(), f"no JUnit XML at {junit}\n{run.describe()}"
    root = ET.parse(junit).getroot()
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    return root, properties


@pytest.mark.slow
def test_export_holds_the_template_the_workflow_the_readme_and_one_wheel(exported: Path) -> None:
    assert (exported / "lab.ipynb").read_bytes() == (TEMPLATE_DIR / "lab.ipynb").read_bytes()
    assert (exported / "README.md").is_file() and (exported / ".github" / "workflows" / "grader.yml").is_file()
    wheels = list((exported / WHEEL_DIR_NAME).glob("grader-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    assert not list(exported.rglob("reference")), "a reference/ folder in the exported repository"
    assert not [p for p in exported.rglob("*.ipynb") if p != exported / "lab.ipynb"]


@pytest.mark.slow
@pytest.mark.kernel  # `grader check` in a bash step, where the guard's PYTHONPATH is dropped
def test_the_untouched_template_fails_the_check_and_still_publishes(machine: Machine, template_run: CiRun) -> None:
    installs = [s for s in template_run.steps if s.rc is not None and "grader check" not in s.name]
    assert installs and all(s.rc == 0 for s in installs), template_run.describe()
    check = template_run.step("grader check")
    assert check.rc == 1, f"the template should score below FAIL_UNDER (exit 1)\n{template_run.describe()}"
    assert TRACEBACK not in check.output, check.output
    workflow = load_workflow()
    words = check_command(workflow)
    for option in ("--html", "--junit"):
        assert (template_run.workdir / option_value(words, option)).is_file(), f"{option}: nothing written"
    for path in path_lines(find_action_step(workflow, {"actions/upload-artifact"})["with"]["path"]):
        assert (template_run.workdir / path).is_file(), f"the upload step finds nothing at {path}"
    root, properties = junit_of(template_run)
    assert root.tag == "testsuites" and len(list(root.iter("testcase"))) > 0
    assert float(properties["score"]) < float(job_env(workflow)["FAIL_UNDER"]), properties
    assert len(list(root.iter("failure"))) + len(list(root.iter("error"))) > 0


@pytest.mark.slow
@pytest.mark.kernel  # `grader check` in a bash step, where the guard's PYTHONPATH is dropped
def test_grader_comes_from_the_clean_venv_and_no_reference_is_in_reach(machine: Machine, template_run: CiRun) -> None:
    probe = ("import grader, grader.paths as p, importlib.metadata as m, json, pathlib\n"
             "d = m.distribution('grader')\n"
             "print(json.dumps({'file': grader.__file__, 'files': [str(f) for f in d.files or []],\n"
             "  'reference': str(getattr(p, 'REFERENCE_NOTEBOOK', '')),\n"
             "  'reference_exists': pathlib.Path(getattr(p, 'REFERENCE_NOTEBOOK', '/nonexistent')).exists()}))\n")
    env = runner_env(machine, load_workflow(), {})
    done = subprocess.run([str(machine.bin / "python"), "-c", probe], cwd=template_run.workdir, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr

    info = json.loads(done.stdout)
    site = next((machine.venv / "lib").glob("python3*/site-packages"))
    assert Path(info["file"]).resolve().is_relative_to(site.resolve()), info["file"]
    assert not info["reference_exists"], f"the installed grader can reach {info['reference']}"
    assert not [f for f in info["files"] if f.endswith(".ipynb") or "reference/" in f], info["files"]
    assert not (site / "reference").exists()
    assert not (template_run.workdir / "reference").exists()


@pytest.mark.slow
@pytest.mark.kernel  # `grader check` in a bash step, where the guard's PYTHONPATH is dropped
def test_the_reference_solution_passes_the_same_steps(machine: Machine, reference_run: CiRun) -> None:
    check = reference_run.step("grader check")
    assert check.rc == 0, f"the reference should reach FAIL_UNDER (exit 0)\n{reference_run.describe()}"
    assert TRACEBACK not in check.output
    _, properties = junit_of(reference_run)
    assert float(properties["score"]) >= float(job_env(load_workflow())["FAIL_UNDER"]), properties


def test_cli_export_writes_the_repository_and_refuses_a_folder_in_use(tmp_path, capsys):
    from grader.cli import main

    out = tmp_path / "repo"
    assert main(["template", "--export", str(out), "--lang", "en"]) == 0
    assert "ready in" in capsys.readouterr().out
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "lab.ipynb", "README.md", ".gitignore", ".github/workflows/grader.yml",
        f".grader/{next((out / '.grader').glob('grader-*-py3-none-any.whl')).name}"}
    assert main(["template", "--export", str(out), "--lang", "en"]) == 2  # not empty any more
    assert "missing or empty" in capsys.readouterr().err
    assert main(["template", "--export", str(tmp_path / "other"), "--check"]) == 2
