"""docs/queries.md's column mapping is generated from the catalog, and the generator runs as a
module."""

from __future__ import annotations

import subprocess
import sys

from tests.support.fixtures import REPO
from tools.queries_doc import BEGIN, END, mapping_markdown


def test_docs_queries_md_holds_the_catalogs_mapping():
    text = (REPO / "docs" / "queries.md").read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END) + 1
    assert text[start:end] == mapping_markdown(), (
        "the mapping in docs/queries.md is stale: replace the block between its markers with "
        "the output of `python -m tools.queries_doc`"
    )


def test_queries_doc_module_runs():
    out = subprocess.run(
        [sys.executable, "-m", "tools.queries_doc"], capture_output=True, text=True, check=True
    )
    assert out.stdout == mapping_markdown()
    assert "|" in out.stdout
    assert "`PULocationID`" in out.stdout
