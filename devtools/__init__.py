"""Development helpers, not part of the installed package (pyproject's package list leaves them out).

`devtools.synthetic`: synthetic curve cubes for tests, demos and benchmarks (no model needed).
`devtools.browser`: driving the dashboards in Debian's Chromium with Playwright (browser tests, the
latency benchmark, screenshots). `devtools.screenshots`: the documentation's screenshots of the three
views (`python -m devtools.screenshots`). Run from the repository root (pytest and `python -m` put it
on the import path).
"""
