"""`python -m bench.classifiers train|verify`: the FID classifiers the harness ships.

`train` trains the classifier of each shipped dataset (the default recipe, one thread,
deterministic kernels; about 20 s each on one core), writes it to bench/evaluation/classifiers/
and prints the SHA-256 pins to paste into `SHIPPED_CLASSIFIERS` (bench/evaluation/features.py).
`verify` checks every shipped file against its pin and prints each one's test accuracy. Changing
a shipped classifier changes every FID, KID and P/R/D/C computed on it: bump HARNESS_VERSION.
"""
from __future__ import annotations

import argparse
import sys

from bench.evaluation.features import (
    SHIPPED_CLASSIFIERS,
    ClassifierRecipe,
    ShippedClassifierError,
    build_classifier,
    file_sha256,
    save_classifier,
    shipped_classifier,
    shipped_path,
)

# each shipped dataset's classifier is trained on the training images of this stream (all its tasks)
DATASET_STREAMS = {"mini": "mini", "mnist": "split-mnist", "fashion": "split-fashion",
                   "mnist+fashion": "mnist-fashion"}


def train(datasets: list[str], data_dir=None) -> dict[str, str]:
    from streams.stream import load_stream

    pins = {}
    for dataset in datasets:
        stream = load_stream(DATASET_STREAMS[dataset], data_dir)
        model, info = build_classifier(stream, ClassifierRecipe())
        path = shipped_path(dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_classifier(model, info, stream.spec.image_shape[-1], path)
        pins[dataset] = file_sha256(path)
        print(f"{dataset}: {path} ({path.stat().st_size // 1024} KiB), test accuracy "
              f"{info['test_accuracy']:.4f}, weights {info['weights_sha256']}", file=sys.stderr)
    return pins


def verify() -> int:
    bad = 0
    for dataset in SHIPPED_CLASSIFIERS:
        try:
            info = shipped_classifier(dataset).info
            print(f"{dataset}: ok, test accuracy {info['test_accuracy']:.4f}, weights {info['weights_sha256']}")
        except ShippedClassifierError as err:
            print(f"{dataset}: {err}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classifiers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["train", "verify"])
    parser.add_argument("--datasets", default=",".join(DATASET_STREAMS),
                        help=f"comma-separated, of: {', '.join(DATASET_STREAMS)} (train; default all)")
    parser.add_argument("--data-dir", default=None, help="where the datasets are (default ./data)")
    args = parser.parse_args(argv)
    if args.action == "verify":
        return verify()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASET_STREAMS]
    if unknown:
        print(f"error: unknown dataset(s) {', '.join(unknown)}; valid: {', '.join(DATASET_STREAMS)}",
              file=sys.stderr)
        return 2
    pins = train(datasets, args.data_dir)
    print("SHIPPED_CLASSIFIERS = {")
    for dataset, digest in pins.items():
        print(f'    "{dataset}": "{digest}",')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
