"""What must not move: the parent process's thread count (workers use one thread, the FID
classifier ships) leaves every number of a cell identical to the bit; the CPU kernel level does
not, which is why bench/__init__.py pins it (reports/reliability.md)."""
from bench import reproduce

GRID = ["--methods", "reservoir,ocm-iw50", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
        "--no-progress", "--workers", "1", "--set", "fid_features=classifier", "--set", "fid_samples=130",
        "--set", "eval_test_per_task=128"]


def test_the_parent_threads_leave_every_number_identical(tmp_path):
    data = {"BENCH_DATA_DIR": str(tmp_path / "data")}   # its caches here, not in the checkout's data/
    one = reproduce.run_grid(tmp_path / "one", [], data, 1, GRID)
    two = reproduce.run_grid(tmp_path / "two", [], data, 2, GRID)
    result = reproduce.compare(one, two)
    assert result["cells"] == 2 and result["identical"] == 2, result
    assert one["ocm-iw50/seed0"]["fid"] is not None and one["ocm-iw50/seed0"]["kid"] is not None
    # and the comparison does see a difference where there is one
    avx512 = reproduce.run_grid(tmp_path / "avx512", [], {**data, "ATEN_CPU_CAPABILITY": "avx512"}, 1, GRID)
    assert reproduce.compare(one, avx512)["largest"].get("nll", 0) > 0


def test_the_section_is_replaced_in_place(tmp_path):
    report = tmp_path / "reliability.md"
    report.write_text("# Reliability\n\nfault tables\n")
    reproduce.write_section(report, f"{reproduce.START}\nfirst\n{reproduce.END}\n")
    reproduce.write_section(report, f"{reproduce.START}\nsecond\n{reproduce.END}\n")
    text = report.read_text()
    assert text.count(reproduce.START) == 1 and "second" in text and "first" not in text
    assert text.startswith("# Reliability\n\nfault tables")
