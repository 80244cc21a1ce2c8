"""The evaluator's C kernel (methods/models/native/bernoulli_log_likelihood.c) against float64, and its build."""
import math
import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from methods.models.native import kernel as native_kernel

HAS_COMPILER = shutil.which(os.environ.get("CC", "cc")) is not None
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler on this machine")


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """The kernel as a new process would find it, built into an empty cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(native_kernel.SWITCH, raising=False)
    native_kernel._loaded.cache_clear()
    yield tmp_path
    native_kernel._loaded.cache_clear()


def float64_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x.l - sum softplus(l) per row (row r is image r % B), in float64."""
    logits = logits.double()
    images = x.double().repeat(len(logits) // len(x), 1)
    return (images * logits).sum(-1) - F.softplus(logits).sum(-1)


@needs_compiler
@pytest.mark.parametrize("rows,images,cols,scale", [
    (512, 2, 784, 4.0),      # the paper's decoder: 49 vectors of 16 per row
    (60, 3, 30, 10.0),       # 30 = 16 + 14 pixels left to the scalar tail
    (8, 1, 5, 1.0),          # fewer pixels than a vector
    (16, 4, 3000, 2.0),      # more than 64 steps: the products are logged every 64 steps
    (64, 8, 784, 80.0),      # saturated: |l| log2(e) far beyond the clamp at 64
])
def test_kernel_matches_float64(fresh_kernel, rows, images, cols, scale):
    generator = torch.Generator().manual_seed(rows + cols)
    logits = torch.randn(rows, cols, generator=generator) * scale
    bias = torch.randn(cols, generator=generator) * scale
    x = torch.bernoulli(torch.full((images, cols), 0.3), generator=generator)
    truth = float64_log_likelihood(logits + bias, x)
    out = native_kernel.bernoulli_log_likelihood(logits * (1 / math.log(2)), bias * (1 / math.log(2)),
                                                 x - 0.5)
    assert out.dtype == torch.float32 and out.shape == (rows,)
    # the yardstick: torch's direct form in float32, x.l - sum softplus(l)
    logits32 = logits + bias
    direct32 = (x.repeat(rows // images, 1) * logits32).sum(-1) - F.softplus(logits32).sum(-1)
    float32_error = (direct32.double() - truth).abs().max().item()
    error = (out.double() - truth).abs().max().item()
    assert error <= max(3 * float32_error, 1e-6 * truth.abs().max().item()), (error, float32_error)
    assert truth.abs().mean() > cols * 0.2                       # a non-trivial number


@needs_compiler
def test_the_library_is_built_once_and_reused(fresh_kernel):
    first = native_kernel.build()
    assert first.parent == fresh_kernel / "ocm-bench" / "kernels" and first.exists()
    built_at = first.stat().st_mtime_ns
    assert native_kernel.build() == first and first.stat().st_mtime_ns == built_at
    assert [p.name for p in first.parent.iterdir()] == [first.name]   # no half-written leftovers


def test_without_a_compiler_the_torch_form_is_used_with_a_warning(fresh_kernel, monkeypatch):
    from methods.models.native import decoder as decoder_inference

    monkeypatch.setenv("CC", str(fresh_kernel / "no-such-compiler"))
    with pytest.warns(UserWarning, match="C kernel is unavailable"):
        assert not native_kernel.available()
    raw = torch.zeros(4, 16)
    assert native_kernel.bernoulli_log_likelihood(raw, torch.zeros(16), raw) is None
    # the torch form's numbers: tests/test_nll.py, its "torch" evaluator_form
    assert decoder_inference.form(torch.device("cpu")) == "cpu rewrite, torch"


def test_the_switch_turns_it_off_without_building(fresh_kernel, monkeypatch):
    monkeypatch.setenv(native_kernel.SWITCH, "0")
    assert not native_kernel.available()
    assert not (fresh_kernel / "ocm-bench").exists()


@needs_compiler
def test_inputs_it_does_not_take(fresh_kernel):
    raw, bias, centred = torch.zeros(6, 20), torch.zeros(20), torch.zeros(3, 20)
    assert native_kernel.bernoulli_log_likelihood(raw, bias, centred) is not None
    assert native_kernel.bernoulli_log_likelihood(raw.double(), bias, centred) is None
    assert native_kernel.bernoulli_log_likelihood(torch.zeros(20, 6).T, bias, centred) is None
    with pytest.raises(ValueError, match="shapes do not match"):
        native_kernel.bernoulli_log_likelihood(raw, torch.zeros(19), centred)
