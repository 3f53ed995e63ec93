"""Force a rerun of one month: ``tlc-forget --color green --year 2021 --month 1 --from clean``.

Luigi reruns a task only when its output is missing, so forcing means removing outputs:
``--from load`` drops the load marker (the next run reloads from the clean lake, replacing
the month's rows), ``--from clean`` also removes the clean month, ``--from raw`` (the default)
also removes the download. Rows in the warehouse are never deleted here: the next load
replaces them atomically.
"""

from __future__ import annotations

import argparse
import sys

import pipeline  # noqa: F401  (selects the TOML config parser)
from pipeline import catalog, config, lake

STAGES = ("raw", "clean", "load")


def forget(
    color: str, year: int, month: int, start: str, sinks: tuple[str, ...] = ("duckdb",)
) -> list[str]:
    catalog.check_month(color, year, month)
    done: list[str] = []
    for name in sinks:
        warehouse = config.sink(name)
        if warehouse.forget(color, year, month):
            done.append(f"load marker {color} {year:04d}-{month:02d} in {name} ({warehouse!r})")
    stages = set(STAGES[STAGES.index(start) :]) - {"load"}  # this stage and all after it
    done += [str(p) for p in lake.remove_month(config.lake().get(), color, year, month, stages)]
    if "clean" in stages and config.gcs().bucket:
        # The bucket's copy of the clean month goes too, or UploadGCS would find it complete.
        done += config.gcs().get().remove_month(color, year, month)
    return done


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tlc-forget", description=__doc__.split("\n\n")[0])
    p.add_argument("--color", default="yellow", choices=catalog.COLORS)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--month", type=int, required=True)
    p.add_argument("--from", dest="start", choices=STAGES, default="raw")
    p.add_argument(
        "--sink",
        choices=(*config.SINKS, "all"),
        default="duckdb",
        help="whose load marker to drop (default duckdb; 'all' needs every sink reachable)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sinks = config.SINKS if args.sink == "all" else (args.sink,)
    removed = forget(args.color, args.year, args.month, args.start, sinks)
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove: the month was not done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
