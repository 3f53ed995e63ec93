"""docs/schema.md is generated from the catalog, and the generator runs as a module."""

from __future__ import annotations

import subprocess
import sys

from tests.support.fixtures import REPO
from tools.schema_doc import schema_markdown


def test_docs_schema_md_is_generated_from_the_catalog():
    assert (REPO / "docs" / "schema.md").read_text() == schema_markdown(), (
        "docs/schema.md is stale: run `python -m tools.schema_doc > docs/schema.md`"
    )


def test_schema_doc_module_runs():
    out = subprocess.run(
        [sys.executable, "-m", "tools.schema_doc"], capture_output=True, text=True, check=True
    )
    assert out.stdout == schema_markdown()
    assert "RuntimeWarning" not in out.stderr
