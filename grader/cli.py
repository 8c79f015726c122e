"""Command line: thin commands over the library, and the one error boundary.

Exit codes: 0 everything passed, 1 a check failed, 2 bad input or usage,
3 the grader itself failed.
"""
from __future__ import annotations

import argparse
import atexit
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from grader import __version__
from grader.errors import EXIT_CHECK_FAILED, EXIT_INTERNAL, EXIT_OK, BadInputError, GraderError
from grader.logs import logging_to_stderr
from grader.messages import DEFAULT_LANGUAGE, text
from grader.safe_text import safe_std_streams

Handler = Callable[[argparse.Namespace], int]


def _cmd_template(args: argparse.Namespace) -> int:
    from grader.distribution.template import write_template

    if args.export is not None:
        from grader.distribution.student_repo import export_student_repo

        if args.check or args.out or args.reference:
            raise BadInputError("--export 直接使用已提交的模板，不能与 --check/--out/--reference 同用 / "
                                "--export takes the committed template as it is; use it without "
                                "--check/--out/--reference")
        print(text("cli.exported", args.lang or DEFAULT_LANGUAGE, out=export_student_repo(args.export)))
        return EXIT_OK
    return write_template(args.reference, args.out, check_only=args.check)


def _cmd_golden(args: argparse.Namespace) -> int:
    from grader.distribution.golden_build import check_report, write_golden
    from grader.paths import GOLDEN_DIR

    folder = args.out or GOLDEN_DIR
    if args.check:
        ok, report = check_report(folder)
        print(report)
        return EXIT_OK if ok else EXIT_CHECK_FAILED
    print(text("cli.golden_written", args.lang or DEFAULT_LANGUAGE, out=write_golden(folder)))
    return EXIT_OK


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from grader.data.synth import generate

    summary = generate(args.dir, seed=args.seed)
    print(summary.describe())
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from grader.data.validate import report_dataset

    return report_dataset(args.path, lang=args.lang or DEFAULT_LANGUAGE)


def _cmd_check(args: argparse.Namespace) -> int:
    from grader.check_progress import CheckProgress

    progress = CheckProgress(args.lang or DEFAULT_LANGUAGE)
    progress.start(Path(args.notebook).name)  # before torch is imported: the first word in well under 1 s
    from grader.pipeline import CheckOptions, check_notebook
    from grader.report.json_report import report_to_json
    from grader.report.results import dumps
    from grader.report.single import SingleExports, write_single_exports
    from grader.report.terminal import print_report
    from grader.rubric import load_rubric

    rubric = load_rubric(args.rubric)
    lang = args.lang or rubric.meta.language
    if args.data is not None:
        from grader.data.validate import raise_if_invalid

        raise_if_invalid(args.data)  # every problem at once (exit 2), before the notebook runs
    options = CheckOptions(data=args.data, device=args.device, rubric=args.rubric, seed=args.seed,
                           sandbox="require" if args.require_sandbox else "auto", self_check=not args.full,
                           calibration=args.calibration)
    progress.lang = lang
    try:
        report = check_notebook(args.notebook, options, lang=lang, progress=progress)
    finally:
        progress.finish()
    result = report_to_json(report, rubric, lang)
    if args.format == "json":
        print(dumps(result))
    else:
        print_report(result, lang)
    exports = SingleExports(html=args.html, junit=args.junit, gradescope=args.gradescope, json=args.json)
    for path in write_single_exports(result, exports, lang):
        # stderr, so `--format json` keeps stdout a single JSON object
        print(text("cli.wrote", lang, path=path), file=sys.stderr)
    if args.fail_under is not None:
        return EXIT_OK if report.score >= args.fail_under else EXIT_CHECK_FAILED
    return EXIT_OK if report.all_passed else EXIT_CHECK_FAILED


def _cmd_report(args: argparse.Namespace) -> int:
    from grader.report.outputs import write_outputs
    from grader.report.results import load_results
    from grader.roster import join, read_roster
    from grader.rubric import load_rubric

    rubric = load_rubric(args.rubric)
    lang = args.lang or rubric.meta.language
    roster = read_roster(args.roster, lang) if args.roster is not None else None
    results = join(load_results(args.results, lang), roster, rubric, lang)
    written = write_outputs(results, args.out, lang)
    print(text("cli.report_written", lang, count=len(results), out=args.out))
    for path in written.summary_files():
        print(f"  {path}")
    return EXIT_OK


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from grader.calibrate import DEFAULT_MARGIN, calibrate
    from grader.devices import resolve_device
    from grader.messages import render
    from grader.threads import limit_torch_threads

    limit_torch_threads()
    lang = args.lang or DEFAULT_LANGUAGE
    device = resolve_device(args.device, lang)
    margin = DEFAULT_MARGIN if args.margin is None else args.margin
    # Each line once, as it is decided: the header before the first seed trains, the conclusion last.
    result = calibrate(args.data, args.seeds, args.rubric, args.out, margin, device=device.torch_device,
                       emit=lambda msg: print(render(msg, lang), flush=True))
    return result.exit_code


def _cmd_grade(args: argparse.Namespace) -> int:
    from grader.batch.run import GradeOptions, grade
    from grader.rubric import load_rubric

    lang = args.lang or load_rubric(args.rubric).meta.language
    options = GradeOptions(
        submissions=args.submissions, out=args.out, jobs=args.jobs, data=args.data, device=args.device,
        rubric=args.rubric, id_pattern=args.id_pattern, force=args.force, executor=args.executor,
        scheduler=args.scheduler, lang=lang, require_sandbox=args.require_sandbox, calibration=args.calibration,
        roster=args.roster,
    )
    return grade(options).exit_code


def _cmd_override(args: argparse.Namespace) -> int:
    from grader.batch import ledger
    from grader.rubric import load_rubric

    lang = args.lang or DEFAULT_LANGUAGE
    with ledger.open_store(args.out, lang) as store:
        if args.list or args.history:
            for line in ledger.list_lines(store, lang, history=args.history):
                print(line)
            return EXIT_OK
        by = args.by or ledger.default_author()
        if args.from_file is not None:
            requests = ledger.requests_from_csv(args.from_file, by, lang)
        elif args.student and args.check and (args.clear or args.points is not None):
            points = None if args.clear else args.points
            requests = [ledger.Request(args.student, args.check, points, args.reason or "", by)]
        else:
            raise BadInputError(text("override.need_action", lang))
        rubric = load_rubric(args.rubric)  # before anything is recorded: a bad --rubric records nothing
        recorded = ledger.record(store, requests, lang)
        ledger.rewrite_outputs(store, args.out, lang, sys.stderr, rubric)
    print(text("override.recorded", lang, count=len(recorded), out=str(args.out)))
    return EXIT_OK


def _cmd_release(args: argparse.Namespace) -> int:
    from grader.release import release
    from grader.rubric import load_rubric

    rubric = load_rubric(args.rubric)
    lang = args.lang or rubric.meta.language
    done = release(args.out, args.dest, lang, rubric)
    print(text("cli.released", lang, count=len(done.files), dest=str(done.folder), index=str(done.index)))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from grader.serve.command import serve

    return serve(args.out, port=args.port, allow_edit=args.allow_edit, rubric_path=args.rubric, lang=args.lang,
                 host=args.host)


def _cmd_gradescope_autograder(args: argparse.Namespace) -> int:
    from grader.distribution.gradescope_autograder import build_autograder_zip

    written = build_autograder_zip(args.out, data=args.data, rubric=args.rubric)
    print(text("cli.autograder_written", args.lang or DEFAULT_LANGUAGE, path=str(written)))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from grader.distribution.demo import run_demo

    return run_demo(args.out, lang=args.lang or DEFAULT_LANGUAGE)


def _with_parents(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """A parser class whose every (sub)command also accepts the common options."""

    class CommandParser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs.setdefault("parents", [common])
            super().__init__(*args, **kwargs)

    return CommandParser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade the CustomRNN/CustomLSTM audio lab / 自动评测 RNN/LSTM 音频分类实验",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    # --lang and --debug are accepted before or after the command; SUPPRESS keeps a
    # subcommand's unset option from overwriting the value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the grader's DEBUG log lines and the traceback of an internal error")
    common.add_argument("--lang", choices=("zh", "en"), default=argparse.SUPPRESS,
                        help="language of messages and reports (default: the rubric's, else zh)")
    parser.add_argument("--debug", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_with_parents(common))
    sub.required = True

    p = sub.add_parser("check", help="self-check one notebook: which parts are right, which are wrong, and why")
    p.add_argument("notebook", type=Path)
    p.add_argument("--full", action="store_true",
                   help="TAs: grade fully (live reference, fresh secret inputs, hidden checks) instead of the "
                        "student self-check against golden vectors; needs the course's source checkout")
    p.add_argument("--data", type=Path, default=None, help="dataset folder or data.zip (default: the synthetic set)")
    p.add_argument("--device", choices=("auto", "npu", "cuda", "cpu"), default="auto")
    p.add_argument("--rubric", type=Path, default=None, help="rubric TOML (default: rubrics/lab.toml)")
    p.add_argument("--calibration", type=Path, default=None, metavar="FILE",
                   help="lstm.train threshold from `grader calibrate --out FILE`; refused (exit 2) unless made on "
                        "this data (default: <rubric>.calibration.toml beside the rubric, when made on this data)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--fail-under", type=float, default=None, metavar="SCORE",
                   help="exit 0 when the score reaches SCORE, else 1 (instead of 'all checks passed')")
    p.add_argument("--seed", type=int, default=None, help="fix the probe randomness (debugging only)")
    p.add_argument("--html", type=Path, default=None, metavar="FILE", help="also write the HTML report to FILE")
    p.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="also write JUnit XML (one testcase per check)")
    p.add_argument("--gradescope", type=Path, default=None, metavar="FILE",
                   help="also write Gradescope's results.json")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the JSON result (the --format json object) to FILE")
    p.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade (exit 2) unless every kernel protection is available (bubblewrap, namespaces)")
    p.set_defaults(handler=_cmd_check)

    p = sub.add_parser("report", help="render HTML reports, the class summary and exports from stored JSON results")
    p.add_argument("results", type=Path, help="a result .json file (one object or a list) or a folder of them")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder to write into")
    p.add_argument("--roster", type=Path, default=None, metavar="CSV",
                   help="join names (columns id,name[,section]); students without a result get a 'missing' row")
    p.add_argument("--rubric", type=Path, default=None, help="rubric TOML (default: rubrics/lab.toml)")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("template", help="generate student_template/ from reference/ (solution regions -> TODO)")
    p.add_argument("--reference", type=Path, default=None, help="reference notebook (default: reference/lab.ipynb)")
    p.add_argument("--out", type=Path, default=None, help="template to write (default: student_template/lab.ipynb)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if the committed template is stale")
    p.add_argument("--export", type=Path, default=None, metavar="DIR",
                   help="assemble the students' template repository in DIR: student_template/ plus the "
                        "student-safe grader wheel in DIR/.grader/")
    p.set_defaults(handler=_cmd_template)

    p = sub.add_parser("golden", help="write the golden vectors (grader/golden/) from reference/, or --check them")
    p.add_argument("--check", action="store_true",
                   help="only compare with the live reference and its notebook; exit 1 if the vectors are stale")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder (default: grader/golden/)")
    p.set_defaults(handler=_cmd_golden)

    data = sub.add_parser("data", help="datasets in the lab's layout").add_subparsers(dest="data_command",
                                                                                       metavar="ACTION")
    data.required = True
    p = data.add_parser("synth", help="write the deterministic synthetic cat/dog/bird dataset (real WAV files)")
    p.add_argument("dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_cmd_data_synth)
    p = data.add_parser("check", help="validate a dataset folder or data.zip; list every problem")
    p.add_argument("path", type=Path)
    p.set_defaults(handler=_cmd_data_check)

    p = sub.add_parser("calibrate",
                       help="set the lstm.train threshold for a dataset by training the reference over seeds")
    p.add_argument("--data", type=Path, default=None, help="dataset folder or data.zip (default: the synthetic set)")
    p.add_argument("--seeds", type=int, default=10, help="reference runs, one per seed (default: 10)")
    p.add_argument("--margin", type=float, default=None, help="safety margin below the worst seed (default: 0.05)")
    p.add_argument("--rubric", type=Path, default=None, help="rubric TOML (default: rubrics/lab.toml)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write (default: <rubric>.calibration.toml beside it)")
    p.add_argument("--device", choices=("auto", "npu", "cuda", "cpu"), default="cpu")
    p.set_defaults(handler=_cmd_calibrate)

    p = sub.add_parser("grade", help="grade a whole class: a folder or LMS zip of notebooks, in parallel, resumable")
    p.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                   help="folder of notebooks, folder of per-student folders, or the LMS's .zip")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                   help="output folder: grades.sqlite (the store; a rerun resumes from it), reports, exports")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="submissions graded at a time (default: the number of cores)")
    p.add_argument("--data", type=Path, default=None, help="dataset folder or data.zip (default: the synthetic set)")
    p.add_argument("--device", choices=("auto", "npu", "cuda", "cpu"), default="auto")
    p.add_argument("--rubric", type=Path, default=None, help="rubric TOML (default: rubrics/lab.toml)")
    p.add_argument("--calibration", type=Path, default=None, metavar="FILE",
                   help="lstm.train threshold from `grader calibrate --out FILE`; refused (exit 2) unless made on "
                        "this data (default: <rubric>.calibration.toml beside the rubric, when made on this data)")
    p.add_argument("--id-pattern", default=None, metavar="REGEX",
                   help="regex finding the student id in a file or folder name: group 'id', else group 1, else "
                        "the match (default: the whole name; Moodle-like names: '^(?P<id>[^_]+)_')")
    p.add_argument("--force", action="store_true", help="regrade every submission, even unchanged ones")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local worker processes (default), or a Dask cluster (needs --scheduler)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade (exit 2) unless every kernel protection is available (bubblewrap, namespaces)")
    p.add_argument("--roster", type=Path, default=None, metavar="CSV",
                   help="the class list (columns id,name[,section]; UTF-8 or GBK): names in every output, a "
                        "'missing' row for each student without a submission; kept for later runs")
    p.set_defaults(handler=_cmd_grade)

    p = sub.add_parser("override", help="TAs: set or clear a check's points for one student, with the reason "
                                        "(kept in a ledger; every output shows it)")
    p.add_argument("out", type=Path, metavar="OUT", help="the -o folder of `grader grade`")
    p.add_argument("student", nargs="?", help="the student's submission id")
    p.add_argument("check", nargs="?", help="the check id, e.g. lstm.grad")
    p.add_argument("--points", type=float, default=None, help="the check's points (0 to its maximum)")
    p.add_argument("--reason", default=None, help="why (required to set; shown in the reports)")
    p.add_argument("--by", default=None, help="who decides (default: your login name)")
    p.add_argument("--clear", action="store_true", help="remove the override of STUDENT CHECK")
    p.add_argument("--from", dest="from_file", type=Path, default=None, metavar="FILE",
                   help="many at once: a CSV with columns student,check,points,reason[,by] (empty points: clear)")
    p.add_argument("--list", action="store_true", help="show the overrides in force")
    p.add_argument("--history", action="store_true", help="show the whole ledger, cleared ones too")
    p.add_argument("--rubric", type=Path, default=None, help="the class's rubric (default: rubrics/lab.toml)")
    p.set_defaults(handler=_cmd_override)

    p = sub.add_parser("release", help="TAs: one report per student, for the student (hidden checks by points "
                                       "only, a receipt of the grading), and release.csv")
    p.add_argument("out", type=Path, metavar="OUT", help="the -o folder of `grader grade`")
    p.add_argument("-o", "--dest", type=Path, required=True, metavar="DIR", help="folder to write the reports into")
    p.add_argument("--rubric", type=Path, default=None, help="the class's rubric (default: rubrics/lab.toml)")
    p.set_defaults(handler=_cmd_release)

    p = sub.add_parser("serve", help="TAs: a local page over a graded class (loopback only): the class table, each "
                                     "student's report, similar pairs side by side, the exports")
    p.add_argument("out", type=Path, metavar="OUT", help="the -o folder of `grader grade`")
    p.add_argument("--port", type=int, default=8000, metavar="N", help="port to listen on (default: 8000; 0: any free)")
    p.add_argument("--host", default=None, metavar="ADDR",
                   help="the loopback address to listen on (default: a random 127.x.y.z, so the token's cookie goes "
                        "to no other local server; 127.0.0.1 where the system has no other, as macOS)")
    p.add_argument("--allow-edit", action="store_true",
                   help="allow overrides, similarity reviews and the release folder from the page (a per-run token "
                        "in the printed URL is needed for each change)")
    p.add_argument("--rubric", type=Path, default=None, help="the class's rubric (default: rubrics/lab.toml)")
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser("gradescope-autograder", help="TAs: build the autograder zip Gradescope runs (setup.sh, "
                                                     "run_autograder, the grader with the reference)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="ZIP", help="where to write autograder.zip")
    p.add_argument("--data", type=Path, default=None, metavar="ZIP",
                   help="the course's dataset as a zip (default: the synthetic set, generated on Gradescope)")
    p.add_argument("--rubric", type=Path, default=None, help="the course's rubric (default: rubrics/lab.toml)")
    p.set_defaults(handler=_cmd_gradescope_autograder)

    p = sub.add_parser("demo", help="the main job on the embedded default data")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits with 2 on usage errors, as we want
    handler: Handler = args.handler
    lang = args.lang or DEFAULT_LANGUAGE
    # Everything printed or logged may quote a notebook (exception names, messages, file names, ids):
    # a SafeStream shows its control characters and escape sequences instead of obeying them.
    with safe_std_streams(), logging_to_stderr(args.debug):
        return _run(handler, args, lang)


def _run(handler: Handler, args: argparse.Namespace, lang: str) -> int:
    try:
        return handler(args)
    except GraderError as exc:
        message, details = exc.text_in(lang)
        print(f"{text('cli.error_prefix', lang)}: {message}", file=sys.stderr)
        for line in details:
            print(f"  - {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(text("cli.interrupted", lang), file=sys.stderr)
        return 130
    except Exception:  # the one place that turns a bug into exit code 3
        if args.debug:
            traceback.print_exc()
        else:
            last = traceback.format_exc().strip().splitlines()[-1]
            print(f"{text('cli.internal_error', lang)}: {last}", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> NoReturn:
    """The `grader` console script and `python -m grader`: main(), then out without tearing the interpreter down.

    Finalising an interpreter that imported torch, numba and librosa took 0.7 s after `grader check` had
    printed its result (measured), a tenth of the whole check. The exit handlers still run (logs flushed,
    temporary folders removed, multiprocessing's children reaped) and the output is flushed; only the
    module-by-module teardown is skipped. Tests call main() itself.
    """
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the descriptor was closed when the process started
                stream.flush()
        except Exception:  # a closed pipe: nothing more can be said, and the exit code must still be main()'s
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
