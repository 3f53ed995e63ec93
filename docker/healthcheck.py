"""The image's HEALTHCHECK: is this container able to do its work?

Healthy (exit 0) when the central scheduler named in luigi.toml's [core] (and any
LUIGI_CONFIG_PATH override) answers its JSON API, and /data takes a write. Every service of the
image depends on both: the pipeline and tlc-cron report to luigid and write the lake there, and
in luigid's own container the name resolves to luigid itself. Otherwise exit 1 with the reason,
which `docker inspect` / `podman healthcheck run` show.
"""

import json
import os
import sys
import tempfile
import urllib.request

os.environ.setdefault("LUIGI_CONFIG_PARSER", "toml")
import luigi.configuration  # after the line above: luigi reads the parser choice at import


def main() -> int:
    cfg = luigi.configuration.get_config()
    host = cfg.get("core", "scheduler_host", "localhost")
    port = cfg.getint("core", "scheduler_port", 8082)
    url = f"http://{host}:{port}/api/task_list?data=" + urllib.request.quote(
        json.dumps({"status": "RUNNING", "upstream_status": "", "search": ""})
    )
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        if "response" not in body:
            raise ValueError(f"unexpected answer {body!r:.200}")
    except (OSError, ValueError) as e:
        print(f"unhealthy: luigid at {host}:{port} does not answer its API: {e}")
        return 1
    try:
        with tempfile.TemporaryFile(dir="/data"):
            pass
    except OSError as e:
        print(f"unhealthy: cannot write the data volume: {e}")
        return 1
    print(f"healthy: luigid at {host}:{port} answers; data volume writable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
