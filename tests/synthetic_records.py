"""Records as bench.run writes them, made up (seeded) for tests of tables and figures: every field
the reporting layer reads, with plausible numbers. Not a harness module; also used by
reports/figures-15-methods.py to draw the figures at 15 methods."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

# the default grid's methods with their variants, and more: 15 rows in all
FIFTEEN = ["finetune", "first-k[budget=match:ocm]", "reservoir[budget=match:ocm]", "joint", "ocm", "ocm-iw50",
           "ocm-dynamic", "lgm", "curl", "cndpm", "limix", "limix-taskfree", "cndpm-paper", "limix-paper",
           "reservoir[budget=500]"]
BOUNDARIES = {"joint", "lgm", "limix"}
MIXTURES = {"ocm-dynamic": 3, "curl": 4, "cndpm": 5, "cndpm-paper": 6, "limix": 3, "limix-taskfree": 2,
            "limix-paper": 2}
PRESETS = {"cndpm-paper": "cndpm", "limix-paper": "limix-taskfree"}


def base_method(label: str) -> str:
    name = label.partition("[")[0]
    return PRESETS.get(name, name)


def record(label: str, stream: str, seed: int, tasks: int = 5, profile: str = "quick", fid: bool = True,
           sweep: dict | None = None) -> dict:
    """One finished record of `label` (a method, variant or preset) on `stream`."""
    rng = random.Random(f"{label}/{stream}/{seed}/{sweep}")
    method = base_method(label)
    level = 110 + 8 * (sum(map(ord, label)) % 11) + rng.gauss(0, 1.5)
    if sweep and "epochs" in sweep:
        level -= 6 * sweep["epochs"] ** 0.5
    matrix = [[level + (10 if j > t else 0) + 4 * (t - j if j <= t else 0) + rng.gauss(0, 1)
               for j in range(tasks)] for t in range(tasks)]
    components = MIXTURES.get(method, 1)
    matched = {"budget": "ocm"} if "match:" in label else {}
    config = {"budget": 700 + seed} if "budget" in label else {}
    if "budget=500" in label:
        config = {"budget": 500}
    if method.startswith("ocm"):
        config = {"stm_capacity": 512, "ltm_capacity": 2560}
    profile_name = profile if not sweep else f"{profile}[{','.join(f'{k}={v}' for k, v in sorted(sweep.items()))}]"
    out = {
        "status": "done", "profile_name": profile_name, "harness_version": "0.7.0", "stream": stream,
        "method": method, "method_label": label if label != method else None, "seed": seed,
        "needs_task_boundaries": method in BOUNDARIES, "method_config": config, "matched": matched,
        "profile": {"eval_k": 100, "eval_test_per_task": 500, **(sweep or {})},
        "nll": matrix[-1][-1] + 3, "nll_best_component": matrix[-1][-1] + 3 - 2 * (components > 1),
        "nll_se": 0.9 + rng.random() * 0.2, "nll_matrix": matrix,
        "forgetting_nll": 5 + rng.random() * 10, "bwt_nll": -5 - rng.random() * 10,
        "memory": 0 if method == "finetune" else 200 + 40 * seed, "memory_peak": 0 if method == "finetune" else 710,
        "gradient_steps": 1200 + 300 * (len(label) % 5), "images_trained": 70000 + 1000 * (len(label) % 7),
        "components": components, "parameters": 600000 * components, "train_seconds": 30 + rng.random() * 20,
        "eval_seconds": 5 + rng.random(), "test_sizes": [200] * tasks,
        "timeline": [{"position": 512 * (i + 1), "stm": 512, "ltm": 30 * (i + 1), "added": 10,
                      "components": 1 + i // 3, "expanded": i % 3 == 2} for i in range(6)]
        if method.startswith("ocm") else [],
    }
    if fid:
        fid_matrix = [[40 + v / 10 + rng.gauss(0, 1) for v in row] for row in matrix]
        out.update({"fid": fid_matrix[-1][-1], "fid_matrix": fid_matrix, "forgetting_fid": 3 + rng.random(),
                    "bwt_fid": -3 - rng.random(), "fid_info": {"extractor": "classifier", "samples": 1000},
                    "kid": 1500 + rng.random() * 500, "precision": 0.6 + rng.random() * 0.1,
                    "recall": 0.5 + rng.random() * 0.1, "density": 0.8 + rng.random() * 0.2,
                    "coverage": 0.6 + rng.random() * 0.1, "fid_ci": [38.0, 42.0], "kid_ci": [1400.0, 1600.0]})
    out["key"] = hashlib.sha256(json.dumps([label, stream, seed, profile_name]).encode()).hexdigest()[:16]
    return out


def grid(methods=FIFTEEN, streams=("mini",), seeds=(0, 1, 2), **kwargs) -> list[dict]:
    return [record(m, s, seed, **kwargs) for s in streams for m in methods for seed in seeds]


def write(folder: Path, records: list[dict]) -> Path:
    """The records as a results directory (records/*.json)."""
    (folder / "records").mkdir(parents=True, exist_ok=True)
    for r in records:
        name = f"{r['stream']}__{r['method']}__seed{r['seed']}__{r['key']}.json"
        (folder / "records" / name).write_text(json.dumps(r))
    return folder
