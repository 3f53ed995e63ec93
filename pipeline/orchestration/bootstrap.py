"""Make every run read the same configuration, whatever folder it starts in.

Luigi reads TOML only when ``LUIGI_CONFIG_PARSER=toml`` (luigi#2907), and only from
``/etc/luigi/luigi.toml``, ``./luigi.toml`` and ``$LUIGI_CONFIG_PATH``. A cron job started in
another folder would find no ``luigi.toml``, and with it no ``[retcode]``: a failed run would
exit 0. So the package carries its own defaults (``defaults.toml``: exit codes, worker and
retry policy, logging) as the lowest layer, under the three Luigi already reads:

    pipeline/orchestration/defaults.toml < /etc/luigi/luigi.toml < ./luigi.toml < $LUIGI_CONFIG_PATH

An explicit ``LUIGI_CONFIG_PARSER`` other than toml wins, and then none of this applies.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = Path(__file__).with_name("defaults.toml")


def install() -> None:
    """Select the TOML parser and put the package defaults under every other layer."""
    os.environ.setdefault("LUIGI_CONFIG_PARSER", "toml")
    if os.environ["LUIGI_CONFIG_PARSER"] != "toml":
        return
    import luigi.setup_logging
    from luigi.configuration import LuigiTomlParser, get_config

    paths = LuigiTomlParser._config_paths  # Luigi's list of files, oldest (weakest) first
    if str(DEFAULTS) not in paths:
        paths.insert(0, str(DEFAULTS))
        if getattr(LuigiTomlParser, "_instance", None) is not None:  # read before we came
            LuigiTomlParser.reload()
    # luigi.setup_logging picks its parser when Luigi is imported, which under `luigi --module
    # pipeline` is before this package is (without tlc_pipeline.pth); hand it the TOML one so
    # that the [logging] section is used.
    luigi.setup_logging.BaseLogging.config = get_config()
