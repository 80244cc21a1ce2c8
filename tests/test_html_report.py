"""The HTML page of a results directory (bench.report DIR --html): its tables are the report's own,
what a directory lacks is said in place, it builds fast for the fidelity study's records, and in a
real browser (headless Chromium; skipped without it, CI installs it) every image decodes, every
table has its rows, nothing is requested from the network and the console stays clean."""
import json
import re
import time
from pathlib import Path

import pytest
import torch
from torchvision.utils import save_image

from bench.execution.store import ResultStore
from bench.report import main as report_main
from bench.reporting.frames import select_cells
from bench.reporting.html import build_page, sweep_keys
from bench.reporting.tables import build_report, run_table
from browser import find_chromium, inspect_page

ROOT = Path(__file__).resolve().parents[1]
FIDELITY = ROOT / "reports" / "fidelity"
NO_CHROMIUM = "Chromium not installed (apt-get install chromium; .ci/run installs it)"


def record(method, stream, seed, nll, memory=50, components=1, boundaries=False, fid=None, label=None):
    r = {"status": "done", "profile_name": "quick", "harness_version": "0.7.0", "stream": stream,
         "method": method, "method_label": label or method, "seed": seed, "needs_task_boundaries": boundaries,
         "nll": nll, "nll_best_component": nll - 1, "forgetting_nll": nll / 100, "bwt_nll": -nll / 100,
         "memory": memory, "memory_peak": memory + 10, "components": components, "parameters": 1,
         "gradient_steps": 100, "images_trained": 6400, "train_seconds": 1.0, "eval_seconds": 1.0,
         "profile": {"eval_k": 16, "eval_test_per_task": 64, "sample_grids": True},
         "nll_matrix": [[nll, nll + 10], [nll + 2, nll]],
         "nll_info": {"estimator": "IWAE-16", "test_images": [64, 64], "binarization_seed": 1001, "dtype": "float32"},
         "key": f"{seed}{method}"}
    if fid is not None:
        r.update(fid=fid, fid_matrix=[[fid, fid + 5], [fid + 1, fid]], kid=fid / 10, fid_ci=[fid - 1, fid + 1],
                 precision=0.5, recall=0.5, density=0.5, coverage=0.5,
                 fid_info={"extractor": "classifier", "weights_sha256": "ed75a55839b9eea7", "samples": 1000})
    if method == "ocm":
        r["timeline"] = [{"position": 576 * (k + 1), "ltm": 64 + 14 * k, "stm": 576, "components": 1,
                          "step": 54 * (k + 1), "added": 14} for k in range(4)]
    return r


RECORDS = [record("finetune", "mini", s, 200.0 + s, memory=0, fid=90.0 + s) for s in (0, 1)] + \
          [record("reservoir", "mini", s, 150.0 + s, fid=60.0 + s, label="reservoir[budget=500]") for s in (0, 1)] + \
          [record("ocm", "mini", s, 120.0 + 3 * s, memory=30, fid=40.0 + s) for s in (0, 1)] + \
          [record("joint", "mini", s, 100.0 + s, boundaries=True, fid=20.0 + s) for s in (0, 1)]
FAILED = {"status": "failed", "profile_name": "quick", "harness_version": "0.7.0", "stream": "mini",
          "method": "lgm", "method_label": "lgm", "seed": 0, "error": "FloatingPointError: loss is NaN <step 12>"}


def results_dir(folder: Path, records: list[dict], grids: set[str]) -> Path:
    """A results directory of `records`, with sample and reconstruction grids (64 and 2 x 16
    images of 28 x 28, drawn as bench/evaluation/images.py draws them) for the methods in `grids`."""
    (folder / "records").mkdir(parents=True)
    for r in [dict(r) for r in records]:
        stem = f"{r['stream']}__{r['method']}__seed{r['seed']}__{r.get('key', 'x')}"
        if r.get("method") in grids:
            generator = torch.Generator().manual_seed(r["seed"])
            (folder / "images" / stem).mkdir(parents=True)
            r["pictures"] = []
            for task in (1, 2):
                for kind, n in (("samples", 64), ("reconstructions", 32)):
                    name = f"{kind}-after-task{task}.png"
                    save_image(torch.rand(n, 1, 28, 28, generator=generator), folder / "images" / stem / name,
                               nrow=8, padding=1, pad_value=0.5)
                    r["pictures"].append(f"{stem}/{name}")
        (folder / "records" / f"{stem}.json").write_text(json.dumps(r))
    return folder


def cell_texts(fragment: str) -> list[str]:
    """What each cell reads (tags, <wbr> break points and the non-breaking space after ± removed)."""
    return [re.sub("<[^>]+>", "", c).replace("&nbsp;", " ") for c in re.findall(r"<td>(.*?)</td>", fragment)]


def test_the_html_format_is_the_one_renderer():
    """The HTML tables are the report's: the same cell texts as the text format, the best in <strong>,
    ≈ and † as in text, and text escaped (a method label with '<' and '&')."""
    text, page = build_report(RECORDS, "nll", "text"), build_report(RECORDS, "nll", "html")
    # joint is an upper bound, never the best: ocm, the best of the others, is bold
    assert "<strong>121.50 ±&nbsp;2.12 /<wbr> 30 /<wbr> 1</strong>" in page and "joint†" in page
    for cell in cell_texts(page):
        assert cell in text, cell
    assert "NLL (nats) / memory (samples) / components. Profile quick (harness 0.7.0)" in page
    cells = select_cells(RECORDS, None)
    run_text, run_html = run_table(cells, wide=True), run_table(cells, wide=True, fmt_name="html")
    assert run_html.count("<tr>") == 1 + 4 and all(cell in run_text for cell in cell_texts(run_html))
    odd = [dict(r, method_label="reservoir[note=<a&b>]") if r["method"] == "reservoir" else r for r in RECORDS]
    assert "reservoir[note=&lt;a&amp;b&gt;]" in build_report(odd, "nll", "html")


def test_the_page_holds_every_piece_and_says_what_is_missing(tmp_path, capsys):
    """A directory with FID, a timeline, sample grids for some methods and a failed cell: every
    layout, the grids beside real test images of `mini`, missing grids named, the failed cell, the
    provenance and the regeneration command; nothing loaded from elsewhere. Through the CLI: the
    default path DIR/report.html, printed."""
    folder = results_dir(tmp_path / "results", RECORDS + [FAILED], grids={"finetune", "ocm", "joint"})
    assert report_main([str(folder), "--html"]) == 0
    assert f"wrote {folder / 'report.html'}" in capsys.readouterr().out
    page = (folder / "report.html").read_text()
    for layout in ("run", "nll", "fid", "kid", "precision", "recall", "density", "coverage", "forgetting", "matrix"):
        assert f'id="p1-{layout}"' in page, layout
    assert "No best-component NLL table: no mixture in these records" in page
    assert 'id="p1-samples-mini"' in page and "real test images of mini" in page
    assert page.count('alt="finetune, seed 0, after task 2"') == 2          # samples and reconstructions
    assert "No sample grid on disk for reservoir[budget=500] on mini." in page
    assert "lgm on mini, seed 0: FloatingPointError: loss is NaN &lt;step 12&gt;" in page
    assert "weights_sha256 = ed75a55839b9eea7" in page and "IWAE-16" in page
    assert f"python -m bench.report {folder} --html {folder / 'report.html'}" in page
    assert "No sweep" in page and "No rank figure: one stream" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<script" not in page and "default-src 'none'" in page


def test_missing_pieces_are_said_in_place(tmp_path):
    """No FID, one seed, no sample grids (the profile does not draw them), a dataset not on disk."""
    plain = [{k: v for k, v in r.items() if k not in ("fid", "fid_matrix", "kid", "fid_ci", "fid_info", "precision",
                                                       "recall", "density", "coverage")}
             for r in RECORDS if r["seed"] == 0]
    no_grids = [dict(r, profile=dict(r["profile"], sample_grids=False)) for r in plain]
    page = build_page(tmp_path, no_grids, "cmd")
    assert "No FID, KID, precision, recall, density, coverage in these records" in page
    assert "One seed: no ± std" in page
    assert "No sample grids: the profile does not draw them (sample_grids = false" in page
    other = [dict(r, stream="split-mnist") for r in plain]
    folder = results_dir(tmp_path / "other", other, grids={"ocm"})
    page = build_page(folder, ResultStore(folder).records(), "cmd", data_dir=tmp_path / "no-data")
    assert "real test images of split-mnist not shown" in page and 'alt="ocm, seed 0, after task 2"' in page


def test_the_fidelity_study_page_builds_in_seconds():
    """The fidelity study's 50 committed records (6 profiles, two sweeps, no FID, no grids): one
    section per profile, each sweep laid out; a few seconds on an idle core (the bound leaves room
    for a loaded machine), under 3 MB."""
    records = ResultStore(FIDELITY).records()
    assert len(records) == 50
    start = time.perf_counter()
    page = build_page(FIDELITY, records, "cmd")
    seconds = time.perf_counter() - start
    assert seconds < 90, seconds
    assert len(page.encode()) < 3e6
    assert sweep_keys(records) == ["epochs", "steps_per_batch"]
    assert page.count('<section class="group" id="p') == 6
    assert 'id="sweep-epochs-nll"' in page and 'id="sweep-steps-per-batch-nll"' in page
    assert "No sample grids" in page and "No FID, KID" in page
    # the methods' own numbers (Record.extras), read generically: OCM's selections, STM/LTM sizes
    assert "What the methods recorded of their own" in page and "selections " in page and "ltm_size " in page


@pytest.mark.skipif(find_chromium() is None, reason=NO_CHROMIUM)
def test_the_page_in_a_real_browser(tmp_path):
    """Headless Chromium: every image decoded (natural width > 0), every table with the rows the
    records give, no request beyond the file itself and its data: images, no console error, no
    script, and a screenshot."""
    folder = results_dir(tmp_path / "results", RECORDS + [FAILED], grids={"finetune", "ocm", "joint"})
    page = folder / "report.html"
    assert report_main([str(folder), "--html", str(page)]) == 0
    seen = inspect_page(page, screenshot=tmp_path / "shot.png")
    assert seen["errors"] == []
    assert {url.split(":")[0] for url in seen["requests"]} <= {"file", "data"}
    assert seen["requests"][0] == page.resolve().as_uri()
    assert seen["scripts"] == 0
    assert len(seen["images"]) == 5 + 1 + 3 + 3   # heatmap, NLL and FID curves, timeline, seeds; real; grids
    assert all(i["naturalWidth"] > 0 and i["complete"] for i in seen["images"]), seen["images"]
    grids = [i for i in seen["images"] if "after task" in i["alt"] or "real test images" in i["alt"]]
    assert len(grids) == 1 + 3 + 3 and {(i["naturalWidth"], i["naturalHeight"]) for i in grids} >= {(233, 233)}
    tables = {t["id"]: t for t in seen["tables"] if t["id"]}
    methods = ["finetune", "reservoir[budget=500]", "joint†", "ocm"]
    assert [row[1] for row in tables["p1-run"]["rows"]] == methods
    for layout in ("nll", "fid", "kid", "precision", "recall", "density", "coverage", "forgetting"):
        assert [row[0] for row in tables[f"p1-{layout}"]["rows"]] == methods, layout
        assert tables[f"p1-{layout}"]["caption"].endswith("How these numbers were made: that section.")
    # the protocol once, in its section; the answer (ranked per stream) before every other table
    assert seen["text"].count("a mixture's is -log sum_c w_c p_c(x)") == 1
    assert "Profile quick (harness 0.7.0); NLL = IWAE-16 estimate" in seen["text"]
    assert seen["tables"][0]["id"] == "p1-glance-mini"
    assert [row[2] for row in seen["tables"][0]["rows"]] == ["ocm", "reservoir[budget=500]", "finetune", "joint †"]
    assert seen["pageOverflow"] == 0 and seen["overflowing"] == []
    matrices = [t for t in seen["tables"] if t["layout"] == "matrix"]
    assert len(matrices) == 8 and all(len(t["rows"]) == 2 for t in matrices)   # NLL and FID, 4 methods
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "shot.png").stat().st_size > 50_000


@pytest.mark.skipif(find_chromium() is None, reason=NO_CHROMIUM)
def test_the_fidelity_study_page_in_a_real_browser(tmp_path):
    """The fidelity study's page: every figure decodes, each profile's Table-1 layout has one row per
    method of that profile, each sweep table one row per stream and method, nothing requested."""
    records = ResultStore(FIDELITY).records()
    page = tmp_path / "fidelity.html"
    page.write_text(build_page(FIDELITY, records, "cmd"))
    seen = inspect_page(page)
    assert seen["errors"] == [] and {url.split(":")[0] for url in seen["requests"]} <= {"file", "data"}
    assert seen["images"] and all(i["naturalWidth"] > 0 for i in seen["images"])
    tables = {t["id"]: t for t in seen["tables"] if t["id"]}
    for index in range(1, len({r["profile_name"] for r in records}) + 1):
        rows = tables[f"p{index}-nll"]["rows"]
        assert len(rows) == len({row[0] for row in rows}) >= 7
    epochs = tables["sweep-epochs-nll"]["rows"]
    assert len(epochs) == len({(row[0], row[1]) for row in epochs}) > 7


@pytest.mark.skipif(find_chromium() is None, reason=NO_CHROMIUM)
def test_the_table1_study_page_answers_first_and_fits_1400_pixels(tmp_path):
    """The committed Table-1 study (13+ rows, 3 streams, FID): at 1,400 px nothing scrolls sideways,
    every figure decodes, the protocol is said once, the page opens on the ranked answer per stream
    (joint set apart, never the best) and the claims, and the contents link every section."""
    study = ROOT / "reports" / "table1"
    records = [r for r in ResultStore(study, read_only=True).records() if r.done]
    page = tmp_path / "table1.html"
    page.write_text(build_page(study, records, "cmd"))
    seen = inspect_page(page, width=1400)
    assert seen["errors"] == [] and seen["images"] and all(i["naturalWidth"] > 0 for i in seen["images"])
    assert seen["pageOverflow"] == 0 and seen["overflowing"] == [], seen["overflowing"]
    assert seen["text"].count("a mixture's is -log sum_c w_c p_c(x)") == 1
    first = [t["id"] for t in seen["tables"][:4]]
    assert first == ["p1-glance-split-mnist", "p1-glance-split-fashion", "p1-glance-mnist-fashion", "p1-claims"]
    for table in seen["tables"][:3]:
        ranked = [row for row in table["rows"] if not row[0].startswith("ref.")]
        assert ranked[0][6] == "best" and "joint †" in [row[2] for row in table["rows"] if row[0].startswith("ref.")]
    anchors = set(re.findall(r'href="#([^"]+)"', page.read_text()))
    assert {"p1-at-a-glance-which-method-is-best-and-i", "p1-how-these-numbers-were-made"} <= anchors
    assert {"p1-the-run-s-table", "p1-table-1-layouts", "p1-figures", "p1-provenance"} <= anchors
