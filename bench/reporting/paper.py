"""The OCM paper's Table 1 (Ye & Bors, ECCV 2022), as the paper prints it, for reports that set our
numbers beside it: IWAE-1000 log-likelihoods (nats; here as NLL = minus them), the memory (samples)
and the number of components, per paper row and stream. docs/paper.md holds the same table."""
from __future__ import annotations

# paper row -> stream -> (NLL, memory, components)
TABLE1 = {
    "VAE-ELBO-Random": {"split-mnist": (150.79, "3.0K", 1), "split-fashion": (280.54, "3.0K", 1),
                        "mnist-fashion": (247.46, "3.0K", 1), "cross-domain": (239.71, "3.0K", 1)},
    "VAE-ELBO-OCM": {"split-mnist": (132.07, "1.6K", 1), "split-fashion": (250.74, "1.6K", 1),
                     "mnist-fashion": (215.62, "2.0K", 1), "cross-domain": (201.31, "2.0K", 1)},
    "VAE-IWVAE50-OCM": {"split-mnist": (127.11, "1.6K", 1), "split-fashion": (247.90, "1.6K", 1),
                        "mnist-fashion": (224.34, "2.0K", 1), "cross-domain": (204.35, "2.0K", 1)},
    "Dynamic-ELBO-OCM": {"split-mnist": (115.89, "1.1K", 5), "split-fashion": (237.69, "1.3K", 10),
                         "mnist-fashion": (187.49, "1.4K", 10), "cross-domain": (177.29, "1.5K", 11)},
    "LIMix": {"split-mnist": (146.23, "2.0K", 30), "split-fashion": (262.52, "2.0K", 30),
              "mnist-fashion": (238.63, "2.0K", 30), "cross-domain": (226.63, "2.0K", 30)},
    "CNDPM": {"split-mnist": (120.71, "2.0K", 30), "split-fashion": (257.56, "2.0K", 30),
              "mnist-fashion": (236.79, "2.0K", 30), "cross-domain": (218.15, "2.0K", 30)},
}


def paper_entry(method_label: str, stream: str) -> tuple[str, float, str, int] | None:
    """(paper row, NLL, memory, components) of the paper's Table 1 for a method label (its paper
    name: first-k -> VAE-ELBO-Random, cndpm-paper -> CNDPM, ...) on a stream; None if the paper has
    no such cell."""
    from methods import paper_name
    from streams.registry import base_stream

    name = paper_name(method_label)
    entry = TABLE1.get(name or "", {}).get(base_stream(stream))
    return None if entry is None else (name, *entry)


def paper_text(method_label: str, stream: str) -> str:
    """'132.07 / 1.6K / 1', or '-' where the paper has no number."""
    entry = paper_entry(method_label, stream)
    return "-" if entry is None else f"{entry[1]:.2f} / {entry[2]} / {entry[3]}"
