"""`tensorsmith doctor [--strict] [SCRIPT [ARGS...]]`: the environment's findings and, given a
script, those of running it (as `__main__`, with its arguments). Exit code 0; with --strict, 1 when
there are findings; 1 when the script failed."""
from __future__ import annotations

import argparse
import sys
import traceback

from .environment import check_environment, context
from .findings import Report
from .run import run_script


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tensorsmith doctor", description="why compiled is "
                                     "not faster: the environment, and one run of SCRIPT")
    parser.add_argument("--strict", action="store_true", help="exit code 1 when there are findings")
    parser.add_argument("script", nargs="?", help="a Python script to run and watch")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    options = parser.parse_args(argv)
    report, raised = Report(), None
    if options.script:  # first: the environment is checked as the script left it (threads, TF32)
        report, raised = run_script(options.script, options.args)
    report.environment, report.context = check_environment(), context()
    if raised is not None:
        traceback.print_exception(raised, file=sys.stderr)
        print(f"tensorsmith doctor: {options.script} failed ({type(raised).__name__}); the "
              "findings up to then:", file=sys.stderr)
    print(report)
    return 1 if raised is not None or (options.strict and report.findings) else 0
