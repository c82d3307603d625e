"""The report in a real headless Chromium: no console errors, no request leaves, a screenshot that shows something.

The first tests prove the detectors can fail: a broken script, an external image and a blank page
must each be caught, so a clean result for the report means something.
"""

from __future__ import annotations

from difflab.report.html import write_report

BROKEN = "<html><body><p>x</p><script>console.error('deliberate'); notAFunction();</script></body></html>"
EXTERNAL = '<html><body><p>x</p><img src="http://example.com/x.png"></body></html>'


def test_detectors_catch_console_errors_requests_and_blank_pages(chromium, tmp_path):
    (tmp_path / "broken.html").write_text(BROKEN)
    (tmp_path / "external.html").write_text(EXTERNAL)
    broken = chromium(tmp_path / "broken.html", tmp_path, size="400,300")
    assert any("deliberate" in m for m in broken.console)
    assert any("notAFunction" in m for m in broken.console)
    assert broken.blank()  # one small word on white: blank by the report's standard
    external = chromium(tmp_path / "external.html", tmp_path, size="400,300")
    assert external.requests == ["http://example.com/x.png"]


def test_report_loads_clean_and_shows_pictures(chromium, rich_run, tmp_path):
    page = write_report(rich_run)
    loaded = chromium(page, tmp_path)
    assert loaded.console == []
    assert loaded.requests == []
    assert not loaded.blank()


def test_report_policy_blocks_an_injected_external_picture(chromium, rich_run, tmp_path):
    page = write_report(rich_run)
    page.write_text(page.read_text().replace("<main>", '<main><img src="http://example.com/leak.png">', 1))
    loaded = chromium(page, tmp_path)
    assert loaded.requests == []
    assert any("Content Security Policy" in m and "example.com" in m for m in loaded.console)
