"""``tlc-luigid``: Luigi's central scheduler, reading luigi.toml.

Plain ``luigid`` never imports this package, so it would ignore luigi.toml (luigi#2907) and
with it ``[scheduler] retry_delay``, ``disable_num_failures`` and the rest. This selects the
TOML parser first, then runs luigid with the same arguments:

    tlc-luigid --port 8082 --state-path data/luigid/state.pickle --logdir data/luigid
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("LUIGI_CONFIG_PARSER", "toml")
    from luigi.cmdline import luigid

    luigid(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
