"""Draw the README's pictures into docs/ (small PNGs, committed because the README shows
them). Regenerate them all with

    python docs/make_figures.py [--results DIR] [--zoo zoo.npz] [--only NAME ...]

- dendrogram.png, heatmap.png (without the cell values): the 20 timm architectures of
  notebooks/architecture_similarity.ipynb, with the default setting;
- alignment.png: resnet18 against mobilenetv2_100 (`archalign align resnet18
  mobilenetv2_100 --plot`);
- domains.png: the offline digit domains (`neurn domains --sheet`);
- results.png: `neurn.results.plot_bars` of a study folder: ``--results`` (default
  results/reference-v2/study, the reference study v2 of docs/results.md, when it
  exists), otherwise of a
  tiny smoke study run here on test models for a few steps, and the figure's title says so;
- report.png: a screenshot of `archalign report` in headless chromium, of ``--zoo`` (a
  saved whole-zoo matrix, e.g. `archalign matrix '*' --out zoo.npz`) or else of the
  20-model panel; skipped, saying why, where there is no chromium / selenium.

Traces come from the usual cache (nothing is downloaded). Each PNG is quantised to 256
colours so that it stays under 200 KB.
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import archalign
from archalign.utils.io import atomic_path
from archalign.similarity.plotting import alignment_view

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PANEL = ["resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "densenet121",
         "vgg11", "vgg16", "vgg19", "mobilenetv2_100", "mobilenetv3_small_100",
         "efficientnet_b0", "efficientnet_b2", "ghostnet_100", "regnetx_002", "convnext_tiny",
         "inception_v3", "vit_tiny_patch16_224", "deit_small_patch16_224",
         "swin_tiny_patch4_window7_224", "mixer_b16_224"]


def save_png(source, name: str, dpi: int = 90) -> None:
    """A Figure (or PNG bytes) as docs/<name>, in 256 colours."""
    from PIL import Image

    if isinstance(source, bytes):
        buf = io.BytesIO(source)
    else:
        buf = io.BytesIO()
        source.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    image = Image.open(buf).convert("RGB").quantize(colors=256)
    with atomic_path(DOCS / name) as tmp:
        image.save(tmp, format="png", optimize=True)
    print(f"docs/{name}: {(DOCS / name).stat().st_size / 1024:.0f} KB")


def panel_figures(sm) -> None:
    # both figures cut at the shortlist's k, so their cluster colours agree and the
    # picked models are marked on each
    picks = sm.shortlist(6)
    save_png(sm.plot_dendrogram(shortlist=picks), "dendrogram.png")
    save_png(sm.plot_heatmap(annotate=False, shortlist=picks), "heatmap.png", dpi=80)


def alignment_figure() -> None:
    a, b = "resnet18", "mobilenetv2_100"
    alignment, vocab = archalign.align_models(a, b)
    save_png(alignment_view(alignment, names=vocab, labels=(a, b), columns=40), "alignment.png",
             dpi=110)


def domains_figure() -> None:
    from neurn import data

    save_png(data.contact_sheet(data.list_domains(offline=True)), "domains.png", dpi=70)


def results_figure(folder: Path | None) -> None:
    from neurn.results import plot_bars, read_run, result_rows, summarize

    with tempfile.TemporaryDirectory() as tmp:
        if folder is None:
            folder = Path(tmp) / "study"
            what = ("a smoke study run by docs/make_figures.py (test models, 4 steps): it "
                    "shows the figure, not the science")
            _smoke_study(folder)
        else:
            what = f"the study in {folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}"
        # read the runs, not load_results: that rewrites the folder's tables
        runs = [read_run(p) for p in sorted((folder / "runs").glob("*/result.json"))]
        rows = result_rows(runs)
        fig = plot_bars(rows, summarize(rows))
    fig.suptitle(f"top-1 per target domain: {what}", fontsize=10, y=1.02)
    save_png(fig, "results.png", dpi=80)


def _smoke_study(folder: Path) -> None:
    import neurn

    sm = archalign.similarity_matrix(["test_resnet", "test_vit", "test_efficientnet"],
                                     progress=False)
    neurn.Study(sm.shortlist(2), source="mnist", variants=["baseline", "neurn"],
                out_dir=folder, progress=False, steps=4, evals=2, batch_size=8,
                eval_limit=32, train_limit=64, seeds=[0]).run()


def report_figure(sm) -> None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("docs/report.png: skipped (selenium is not installed)", file=sys.stderr)
        return
    binary, driver_binary = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_binary is None:
        print("docs/report.png: skipped (no chromium / chromedriver on PATH)", file=sys.stderr)
        return
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1200,860",
                 "--hide-scrollbars", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as tmp:
        page = sm.to_html(Path(tmp) / "report.html", shortlist=sm.shortlist(5))
        driver = webdriver.Chrome(service=Service(driver_binary), options=options)
        try:
            driver.get(page.as_uri())
            while not driver.execute_script("return window.archalignReport && "
                                            "window.archalignReport.painted"):
                time.sleep(0.05)
            name = "resnet50" if "resnet50" in sm.labels else sm.labels[0]
            driver.execute_script("const s = document.getElementById('search');"
                                  "s.value = arguments[0];"
                                  "s.dispatchEvent(new Event('input'));", name)
            shot = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    save_png(shot, "report.png")


FIGURES = ("dendrogram", "heatmap", "alignment", "domains", "results", "report")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, help="a neurn study folder for results.png")
    p.add_argument("--zoo", type=Path, help="a saved whole-zoo matrix for report.png")
    p.add_argument("--only", nargs="+", choices=FIGURES, default=FIGURES)
    args = p.parse_args()
    wanted = set(args.only)
    panel = None
    if wanted & {"dendrogram", "heatmap"} or ("report" in wanted and not args.zoo):
        panel = archalign.similarity_matrix(PANEL, progress=False)
    if wanted & {"dendrogram", "heatmap"}:
        panel_figures(panel)
    if "alignment" in wanted:
        alignment_figure()
    if "domains" in wanted:
        domains_figure()
    if "results" in wanted:
        reference = ROOT / "results" / "reference-v2" / "study"
        results_figure(args.results or (reference if (reference / "runs").is_dir() else None))
    if "report" in wanted:
        report_figure(archalign.SimilarityMatrix.load(args.zoo) if args.zoo else panel)


if __name__ == "__main__":
    main()
