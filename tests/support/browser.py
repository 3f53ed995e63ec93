"""Open a local HTML file in Debian's headless Chromium through Playwright, as a reader would:
from disk, with the network refused, and say what rendered.

Playwright's own browser builds are never downloaded (only PyPI, npm and Debian are
reachable): it drives /usr/bin/chromium, which .ci/install-chromium.sh installs.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

# Per Plotly chart (a div.js-plotly-plot): how many marks it drew. Lines are SVG paths with a
# real "d"; a heatmap is drawn to a canvas and placed in the SVG as a data: image.
_MARKS_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => ({
  id: div.id,
  lines: Array.from(div.querySelectorAll('.scatterlayer path.js-line'))
           .filter(p => (p.getAttribute('d') || '').length > 20).length,
  points: div.querySelectorAll('.scatterlayer path.point').length,
  heatmaps: Array.from(div.querySelectorAll('.heatmaplayer image'))
           .filter(i => (i.getAttribute('href') || i.getAttribute('xlink:href') || '')
                        .startsWith('data:image/')).length,
}))
"""


def require_chromium() -> Path:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip(
            f"CHROMIUM MISSING: {CHROMIUM} does not exist; run .ci/install-chromium.sh as root "
            "(the browser test is required in CI)"
        )
    return CHROMIUM


@dataclass
class Rendered:
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    requests: list[str] = field(default_factory=list)  # anything not from the file itself
    marks: dict[str, dict[str, int]] = field(default_factory=dict)  # chart id -> counts
    png: bytes = b""

    def drawn(self, chart: str) -> int:
        return sum(self.marks[chart].values())


def render(
    page_file: Path, width: int = 1400, height: int = 1000, full_page: bool = True
) -> Rendered:
    """Open ``page_file`` (file://), wait for every chart, count its marks, take a screenshot
    (of the whole page, or of the first ``height`` pixels)."""
    from playwright.sync_api import sync_playwright

    out = Rendered()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(require_chromium()), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: out.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: out.errors.append(f"uncaught: {e}"))

            def refuse(route: object) -> None:  # offline: a CDN request would fail here too
                out.requests.append(route.request.url)  # type: ignore[attr-defined]
                route.abort()  # type: ignore[attr-defined]

            page.route(lambda url: not url.startswith(("file:", "data:", "blob:")), refuse)
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            # Plotly draws on load; wait until every chart div holds its SVG.
            page.wait_for_function(
                "() => { const d = document.querySelectorAll('.js-plotly-plot');"
                " return d.length > 0 && Array.from(d).every(x => x.querySelector('.main-svg')); }",
                timeout=30_000,
            )
            out.marks = {m["id"]: {k: int(v) for k, v in m.items() if k != "id"}
                         for m in page.evaluate(_MARKS_JS)}  # fmt: skip
            out.png = page.screenshot(full_page=full_page)
        finally:
            browser.close()
    return out


def pixel_spread(png: bytes) -> tuple[float, float]:
    """(variance of the grey levels, share of pixels that are not near-white): both near 0
    for a blank page."""
    from PIL import Image, ImageStat

    img = Image.open(io.BytesIO(png)).convert("L")
    variance = float(ImageStat.Stat(img).var[0])
    histogram = img.histogram()
    inked = sum(histogram[:240]) / max(1, img.width * img.height)
    return variance, inked
