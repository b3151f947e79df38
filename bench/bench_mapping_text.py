"""Country names and html: what the Babel index costs once per process, and lookups and the sanitiser per value.

Prints figures; asserts nothing about time. Run: make bench  (or .venv/bin/python bench/bench_mapping_text.py)
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPELLINGS = ["US", "USA", "U.S.A.", "United States", "DEU", "Deutschland", "España", "Österreich", "Schweiz",
             "日本", "Great Britain", "Atlantis"]
NOTE = ('<p onclick="x()">Kick-off <script>alert(1)</script><b>agreed</b></p><ul><li>one</li><li>two</li></ul>'
        '<blockquote>q</blockquote><p>--<br>Bob</p><a href="https://example.com/ü a">link</a>')


def main() -> None:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    from crm_migration.mapping import transforms as T
    from crm_migration.mapping.mapper import CountryIndex, territory_index

    names = territory_index()
    built = time.perf_counter() - t0
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    shared = Path(ROOT.parent / "shared" / "odoo17" / "records.json")
    countries = json.loads(shared.read_text())["res.country"] if shared.exists() else [
        {"id": i, "code": c, "name": c} for i, c in enumerate(sorted(set(names.values())))]
    index = CountryIndex(countries, {"Great Britain": "GB"})
    n = 100_000
    t1 = time.perf_counter()
    for i in range(n):
        index(SPELLINGS[i % len(SPELLINGS)])
    lookups = time.perf_counter() - t1
    m = 10_000
    t2 = time.perf_counter()
    for _ in range(m):
        T.html_clean(NOTE)
    cleaned = time.perf_counter() - t2
    t3 = time.perf_counter()
    for _ in range(m):
        T.html_text("Thanks,\nBob\n\n-- \nBob Smith | ACME <acme@example.com>")
    texts = time.perf_counter() - t3
    print(f"machine: {machine()}")
    print(f"Babel country index: {len(names):,} spellings, built in {built:.2f} s (import included), "
          f"peak RSS +{rss:.0f} MB, once per process")
    print(f"country lookups: {n / lookups:,.0f}/s ({len(SPELLINGS)} spellings, Odoo names, codes and Babel's)")
    print(f"html_clean (nh3 + Odoo's form): {m / cleaned:,.0f} notes/s; html_text: {m / texts:,.0f}/s")


if __name__ == "__main__":
    main()
