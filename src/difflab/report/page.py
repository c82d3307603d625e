"""The report page's fixed parts: its security policy and its stylesheet (no scripts, no fonts)."""

from __future__ import annotations

# Nothing may be fetched: pictures are data URIs, styles are inline, and there are no scripts.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { margin: 0; background: #f4f5f7; color: #1d2330; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 24px; margin: 8px 0 16px; }
h2 { font-size: 19px; margin: 0 0 8px; border-bottom: 1px solid #dde1e7; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
h3 small { color: #6b7280; font-weight: normal; font-size: 13px; }
h4 { font-size: 14px; margin: 12px 0 4px; color: #374151; }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 14px 18px; margin: 0 0 18px; }
.summary { display: flex; flex-wrap: wrap; gap: 10px 28px; }
.stat span { display: block; color: #6b7280; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.stat b { font-size: 20px; }
.note { color: #6b7280; font-size: 13px; margin: 0 0 10px; }
.warning { background: #fef2f2; border: 2px solid #dc2626; border-radius: 8px; color: #991b1b; font-weight: 600; padding: 10px 14px; margin: 0 0 14px; }
.facts { font-size: 16px; margin: -6px 0 12px; color: #374151; }
.figs { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 13px; color: #4b5563; margin-top: 4px; max-width: 560px; }
figure.plot img { max-width: 580px; width: 100%; height: auto; }
figure.pixels img { width: 216px; height: auto; image-rendering: pixelated; border: 1px solid #e5e7eb; }
figure.trajectory img { width: auto; max-width: 100%; max-height: 560px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #e5e7eb; padding: 3px 8px; text-align: right; }
th { background: #f9fafb; font-weight: 600; }
table.kv th { text-align: left; }
table.kv td { text-align: left; }
.config { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 0 16px; font-size: 13px; }
.config div { display: flex; justify-content: space-between; border-bottom: 1px solid #f0f1f3; padding: 2px 0; }
.config span { color: #4b5563; }
table.matrix td { min-width: 34px; }
.nested { margin-left: 14px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: #374151; }
pre { background: #f9fafb; padding: 8px; overflow-x: auto; font-size: 12px; }
footer { color: #9ca3af; font-size: 12px; margin-top: 12px; }
"""
