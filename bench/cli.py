"""`ocm-bench SUBCOMMAND ...`: one command for the harness's tools (the console script of the
installed package; `python -m bench.cli` without installing). Each subcommand is the module's
own command line, given the rest of the arguments: `ocm-bench run --help` is `python -m bench.run
--help`."""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module whose main(argv) runs it, what it does)
COMMANDS = {
    "run": ("bench.run", "run a methods x streams x seeds grid and print its NLL table"),
    "report": ("bench.report", "paper tables from a results directory"),
    "check": ("bench.check", "the regression gate: a results directory against a reference"),
    "status": ("bench.status", "done / running / failed / pending cells of a results directory"),
    "sample": ("bench.sample", "samples from a finished cell's kept model (bench.run --keep-models)"),
    "perf": ("bench.perf.benchmarks", "measure the harness against its performance limits"),
    "fetch": ("streams.fetch", "put the dataset files (MNIST, Fashion-MNIST) under the data directory"),
}


def usage() -> str:
    lines = ["usage: ocm-bench SUBCOMMAND [ARGS ...]", "", "subcommands:"]
    lines += [f"  {name:<8} {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "`ocm-bench SUBCOMMAND --help` describes each one."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown subcommand '{name}'; valid subcommands: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return module.main(rest)
    except SystemExit as exit_:   # argparse's --help (0) and usage errors (2)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:   # bench.run says how far it got itself; the others have nothing to resume
        print(f"interrupted (Ctrl-C): ocm-bench {name} stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
