"""Command line: thin commands over the library, and the one error boundary.

Exit codes: 0 everything passed, 1 a check failed, 2 bad input or usage,
3 the grader itself failed.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from grader import __version__
from grader.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, GraderError
from grader.messages import DEFAULT_LANGUAGE, text

Handler = Callable[[argparse.Namespace], int]


def _cmd_template(args: argparse.Namespace) -> int:
    from grader.template import write_template

    return write_template(args.reference, args.out, check_only=args.check)


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from grader.data.synth import generate

    summary = generate(args.dir, seed=args.seed)
    print(summary.describe())
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from grader.data.validate import report_dataset

    return report_dataset(args.path, lang=args.lang)


def _cmd_demo(args: argparse.Namespace) -> int:
    from grader.demo import run_demo

    return run_demo(args.out, lang=args.lang)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade the CustomRNN/CustomLSTM audio lab / 自动评测 RNN/LSTM 音频分类实验",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument(
        "--lang", choices=("zh", "en"), default=DEFAULT_LANGUAGE, help="language of messages (default: zh)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("template", help="generate student_template/ from reference/ (solution regions -> TODO)")
    p.add_argument("--reference", type=Path, default=None, help="reference notebook (default: reference/lab.ipynb)")
    p.add_argument("--out", type=Path, default=None, help="template to write (default: student_template/lab.ipynb)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if the committed template is stale")
    p.set_defaults(handler=_cmd_template)

    data = sub.add_parser("data", help="datasets in the lab's layout").add_subparsers(dest="data_command", metavar="ACTION")
    data.required = True
    p = data.add_parser("synth", help="write the deterministic synthetic cat/dog/bird dataset (real WAV files)")
    p.add_argument("dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_cmd_data_synth)
    p = data.add_parser("check", help="validate a dataset folder or data.zip; list every problem")
    p.add_argument("path", type=Path)
    p.set_defaults(handler=_cmd_data_check)

    p = sub.add_parser("demo", help="the main job on the embedded default data")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits with 2 on usage errors, as we want
    handler: Handler = args.handler
    try:
        return handler(args)
    except GraderError as exc:
        print(f"{text('cli.error_prefix', args.lang)}: {exc.message}", file=sys.stderr)
        for line in exc.details:
            print(f"  - {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(text("cli.interrupted", args.lang), file=sys.stderr)
        return 130
    except Exception:  # the one place that turns a bug into exit code 3
        if args.debug:
            traceback.print_exc()
        else:
            last = traceback.format_exc().strip().splitlines()[-1]
            print(f"{text('cli.internal_error', args.lang)}: {last}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
