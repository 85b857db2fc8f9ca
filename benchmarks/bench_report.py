"""The HTML report of the whole zoo: file size and first paint in headless chromium
(issue 14's targets: <= 25 MB, <= 3 s).

Builds the report of a saved matrix (``--matrix zoo.npz``, e.g. from ``archalign matrix
'*' --out zoo.npz``) or, without one, of the whole cached timm zoo with the defaults
(``archalign.similarity_matrix(["*"])``; run ``archalign trace --all`` first), with the
alignments embedded, and opens it ``--runs`` times in a fresh headless chromium with the
network off. Per run: the page's own mark after its first heatmap frame
(``archalignReport.painted``, ms since navigation start), the browser's
first-contentful-paint, and the wall time from ``driver.get`` to that mark. Then the
alignment of the two longest sequences, clicked in the page.

    python benchmarks/bench_report.py [--matrix zoo.npz] [--runs 5] [--keep report.html]

Needs chromium, chromedriver and selenium (``apt-get install chromium chromium-driver``,
``pip install selenium``).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import archalign
from archalign.similarity.matrix import SimilarityMatrix


def start_browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    # without the background-networking switches chromium dials out at start-up
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_network_conditions(offline=True, latency=0, download_throughput=0,
                                  upload_throughput=0)
    return driver


def first_paint(path: Path, profile: Path) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    driver = start_browser(profile)
    try:
        t0 = time.perf_counter()
        driver.get(path.as_uri())
        WebDriverWait(driver, 60, poll_frequency=0.01).until(lambda d: d.execute_script(
            "return window.archalignReport && window.archalignReport.painted"))
        wall = time.perf_counter() - t0
        marks = driver.execute_script(
            "return [window.archalignReport.painted, (performance.getEntriesByName("
            "'first-contentful-paint')[0] || {}).startTime]")
        return {"painted": marks[0] / 1000, "fcp": (marks[1] or float("nan")) / 1000,
                "wall": wall, "driver": driver}
    except BaseException:
        driver.quit()
        raise


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--matrix", type=Path, help="a saved .npz (default: the cached zoo)")
    p.add_argument("--runs", type=int, default=5, help="page loads, each in a fresh browser")
    p.add_argument("--keep", type=Path, help="keep the report here (default: a temp file)")
    args = p.parse_args()

    t0 = time.perf_counter()
    sm = (SimilarityMatrix.load(args.matrix) if args.matrix
          else archalign.similarity_matrix(["*"], progress=False))
    matrix_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "report.html"
        t0 = time.perf_counter()
        sm.to_html(path)
        build_s = time.perf_counter() - t0
        runs, aligned_ms = [], None
        for k in range(args.runs):
            run = first_paint(path, Path(tmp) / f"profile-{k}")  # a fresh browser each
            if k == 0:  # the slowest click a user can make: the two longest sequences
                a, b = (sm.labels[i] for i in np.argsort(sm.settings["lengths"])[-2:])
                aligned_ms = run["driver"].execute_script(
                    "const t = performance.now(); window.archalignReport.align(arguments[0], "
                    "arguments[1]); return performance.now() - t", a, b)
            run.pop("driver").quit()
            runs.append(run)
        size = path.stat().st_size

    def med(key):
        return statistics.median(r[key] for r in runs)

    print(f"{len(sm)} models; matrix {'loaded' if args.matrix else 'computed'} in "
          f"{matrix_s:.1f} s; report built in {build_s:.1f} s; {args.runs} loads\n")
    print("| models | file MB | painted s (median / max) | first-contentful-paint s | "
          "load wall s | align longest pair ms |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(sm)} | {size / 1e6:.1f} | {med('painted'):.2f} / "
          f"{max(r['painted'] for r in runs):.2f} | {med('fcp'):.2f} | {med('wall'):.2f} | "
          f"{aligned_ms:.0f} |")
    print(f"\ntargets: file <= 25 MB ({'met' if size <= 25e6 else 'MISSED'}), first paint "
          f"<= 3 s ({'met' if max(r['painted'] for r in runs) <= 3 else 'MISSED'})")


if __name__ == "__main__":
    main()
