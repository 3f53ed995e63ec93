"""The column mapping of docs/queries.md (canonical name to the TLC's, per view), from the
catalog. tests/integration/test_queries_doc.py checks that docs/queries.md holds exactly this
block between its markers; ``python -m tools.queries_doc`` prints it."""

from __future__ import annotations

from pipeline.domain import catalog

BEGIN = "<!-- BEGIN mapping: python -m tools.queries_doc -->"
END = "<!-- END mapping -->"


def mapping_markdown() -> str:
    views = [catalog.tlc_view(c) for c in catalog.COLORS]
    names = [dict(v.columns) for v in views]
    canonical: list[str] = []
    for view in views:
        canonical += [c for c, _ in view.columns if c not in canonical]
    out = [
        BEGIN,
        "| canonical (`{color}_trips`) | " + " | ".join(f"`{v.name}`" for v in views) + " |",
        "|---|" + "---|" * len(views),
    ]
    for column in canonical:
        cells = [f"`{n[column]}`" if column in n else "" for n in names]
        out.append(f"| `{column}` | " + " | ".join(cells) + " |")
    zones = catalog.zones_tlc_view()
    out += ["", f"| canonical (`{zones.table}`) | `{zones.name}` |", "|---|---|"]
    out += [f"| `{c}` | `{n}` |" for c, n in zones.columns]
    out.append(END)
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - tests/integration/test_queries_doc.py runs it
    print(mapping_markdown(), end="")
