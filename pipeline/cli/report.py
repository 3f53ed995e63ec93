"""Draw the quality report: ``tlc-report --out data/report.html``.

One self-contained HTML file (it opens from disk, offline) of every clean month in the lake
(``[lake] root``) and the load ledgers of the sinks in ``[pipeline] sinks``: rows per month
per colour, rows dropped per rule, null share per column, file sizes and load seconds, and
the anomalies found, in a table and on the charts. docs/report.md describes the checks.

Exit codes: 0 written (anomalies or not, unless --fail-on-anomaly), 1 failed (the lake or a
sink unreadable, an empty lake), 2 bad arguments, 4 written with anomalies and
--fail-on-anomaly given (for cron and CI).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pipeline  # noqa: F401  (the package's configuration layers)
from pipeline.domain.errors import PipelineError
from pipeline.observe import report
from pipeline.orchestration import config

EXIT_FAILED, EXIT_USAGE, EXIT_ANOMALIES = 1, 2, 4
DEFAULT_OUT = "data/report.html"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tlc-report", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help=f"default {DEFAULT_OUT}")
    p.add_argument(
        "--sinks",
        default=None,
        help="comma list of the ledgers to read (default: [pipeline] sinks); '' for none",
    )
    p.add_argument(
        "--fail-on-anomaly", action="store_true", help="exit 4 when the report flags anything"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.sinks is None:
            names = config.pipeline().sink_names()
        else:
            names = tuple(s.strip() for s in args.sinks.split(",") if s.strip())
            unknown = [s for s in names if s not in config.SINKS]
            if unknown:
                raise ValueError(f"--sinks: unknown {unknown}; choose from {config.SINKS}")
    except ValueError as e:
        print(f"tlc-report: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sinks = {name: config.sink(name) for name in names}
        written = report.write_report(config.lake().get(), sinks, args.out)
    except PipelineError as e:
        print(f"tlc-report: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {written.path}: {written.months} clean months, "
          f"{len(written.anomalies)} anomalies")  # fmt: skip
    for a in written.anomalies:
        print(f"  {a.key.label}: {report.RULE_TITLES[a.rule]}: {a.detail}")
    return EXIT_ANOMALIES if written.anomalies and args.fail_on_anomaly else 0


if __name__ == "__main__":
    sys.exit(main())
