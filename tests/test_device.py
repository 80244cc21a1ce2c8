"""`--device`: resolution and errors everywhere; on a CUDA machine, every method trains and is
scored on the GPU with the CPU's numbers (tests marked `cuda` skip without a GPU)."""
import json

import pytest
import torch
import torch.nn.functional as F
from test_nll import constant_decoder_vae

from bench.evaluation.cell import train_and_evaluate
from bench.evaluation.device import DeviceUnavailableError, check_choice, resolve_device
from bench.execution.executor import default_gpus_per_cell, may_use_cuda
from bench.execution.store import ResultStore
from bench.planning.grid import expand_grid
from bench.planning.profiles import resolve_profile
from bench.run import main
from methods import METHODS
from methods.models.likelihood import iwae_log_likelihood

HAS_CUDA = torch.cuda.is_available()
cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress"]


def test_auto_is_the_cpu_for_cpu_profiles_and_the_gpu_for_the_paper_profile(monkeypatch):
    assert resolve_device("auto", "quick") == torch.device("cpu")
    assert resolve_device("cpu", "paper") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "paper[epochs=2]") == torch.device("cpu")
    with pytest.raises(DeviceUnavailableError, match="no CUDA GPU is visible"):
        resolve_device("cuda", "smoke")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto", "paper[epochs=2]") == torch.device("cuda", 0)
    assert resolve_device("auto", "quick") == torch.device("cpu")
    with pytest.raises(DeviceUnavailableError, match="sees 1 GPU"):
        resolve_device("cuda:3", "paper")


@pytest.mark.parametrize("bad", ["gpu", "cpu:1", "tpu"])
def test_unknown_devices_are_refused_with_the_valid_ones(bad):
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda, cuda:N"):
        check_choice(bad)


def test_the_runner_refuses_a_missing_gpu_or_a_bad_device_before_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(SMOKE + ["--methods", "finetune", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert main(SMOKE + ["--methods", "finetune", "--device", "gpu", "--out", str(tmp_path)]) == 2
    assert "valid: auto, cpu, cuda" in capsys.readouterr().err
    assert not (tmp_path / "records").exists()


def test_gpu_requests_and_worker_start_method_follow_the_device():
    assert default_gpus_per_cell("cuda", {"smoke"}, gpus_available=False) == 1
    assert default_gpus_per_cell("auto", {"paper"}, gpus_available=True) == 1
    assert default_gpus_per_cell("auto", {"paper"}, gpus_available=False) == 0
    assert default_gpus_per_cell("auto", {"quick"}, gpus_available=True) == 0
    assert default_gpus_per_cell("cpu", {"paper"}, gpus_available=True) == 0
    assert may_use_cuda("cuda:1", {"smoke"}) and may_use_cuda("auto", {"paper[eval_k=10]"})
    assert not may_use_cuda("auto", {"quick"}) and not may_use_cuda("cpu", {"paper"})


def test_records_say_which_device_produced_them(tmp_path):
    assert main(SMOKE + ["--methods", "finetune", "--device", "cpu", "--out", str(tmp_path)]) == 0
    (record,) = ResultStore(tmp_path).records()
    assert record["device"] == "cpu"


# ------------------------------------------------------------------------------- on a GPU
def smoke_cell(method, seed=0):
    return expand_grid([method], ["mini"], [seed], resolve_profile("smoke"))[0]


@cuda
def test_the_iwae_estimator_is_exact_on_the_gpu_too():
    vae = constant_decoder_vae().cuda()
    x = torch.bernoulli(torch.full((40, 784), 0.3), generator=torch.Generator().manual_seed(1)).cuda()
    exact = -F.binary_cross_entropy_with_logits(
        vae.components[0].decoder_out.bias.expand_as(x), x, reduction="none").sum(1)
    estimate = iwae_log_likelihood(vae, x, 1000, torch.Generator("cuda").manual_seed(2))
    assert estimate.device.type == "cuda"
    torch.testing.assert_close(estimate, exact, atol=1e-3, rtol=0)


@cuda
def test_cpu_and_gpu_estimates_of_one_model_agree_within_monte_carlo_error():
    torch.manual_seed(0)
    from methods.models.vae import BernoulliVAE

    vae = BernoulliVAE()
    x = torch.bernoulli(torch.full((64, 784), 0.2), generator=torch.Generator().manual_seed(1))
    on_cpu = iwae_log_likelihood(vae, x, 2000, torch.Generator().manual_seed(2))
    on_gpu = iwae_log_likelihood(vae.cuda(), x.cuda(), 2000, torch.Generator("cuda").manual_seed(2)).cpu()
    assert on_cpu.mean() < -300
    assert abs(float(on_cpu.mean() - on_gpu.mean())) < 0.5


@cuda
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_on_the_gpu_like_on_the_cpu(method):
    cell = smoke_cell(method)
    on_gpu = train_and_evaluate(cell, device="cuda")
    on_cpu = train_and_evaluate(cell, device="cpu")
    assert on_gpu["device"].startswith("cuda:") and on_cpu["device"] == "cpu"
    if method in ("finetune", "reservoir", "joint", "lgm"):   # their step counts are data-independent
        assert on_gpu["iterations"] == on_cpu["iterations"]
    # Different random streams, same experiment: the final NLLs agree to a few percent (an
    # untrained model scores about 540 nats, a trained smoke cell about 240).
    assert abs(on_gpu["nll"] - on_cpu["nll"]) < 0.06 * on_cpu["nll"], (on_gpu["nll"], on_cpu["nll"])


@cuda
def test_gpu_cells_are_reproducible():
    first = train_and_evaluate(smoke_cell("ocm-dynamic"), device="cuda")
    second = train_and_evaluate(smoke_cell("ocm-dynamic"), device="cuda")
    assert first["nll_matrix"] == second["nll_matrix"] and first["memory"] == second["memory"]


@cuda
def test_the_runner_uses_the_gpu_with_several_spawned_workers(tmp_path):
    assert main(SMOKE + ["--methods", "reservoir,ocm,lgm", "--seeds", "0,1", "--device", "cuda",
                         "--workers", "2", "--out", str(tmp_path)]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert len(records) == 6 and all(r["status"] == "done" for r in records)
    assert all(r["device"].startswith("cuda:") and 150 < r["nll"] < 300 for r in records)


@cuda
def test_fid_features_and_samples_on_the_gpu_match_the_cpu(tmp_path):
    from bench.evaluation.caches import cached_extractor, cached_stream
    from bench.evaluation.fid import FIDEvaluator, gaussian_stats
    from methods.models.vae import BernoulliVAE

    extractor = cached_extractor("classifier", "mini", None)
    images = cached_stream("mini", None).test_images(0)
    on_gpu = extractor.on("cuda")
    assert on_gpu.device.type == "cuda" and extractor.device.type == "cpu"   # the cached one stays
    torch.testing.assert_close(on_gpu(images.cuda()), extractor(images), atol=1e-4, rtol=1e-4)
    evaluator = FIDEvaluator(on_gpu, "mini-gpu-test", [images.cuda()], 200, tmp_path)
    samples = evaluator.samples(BernoulliVAE().cuda(), torch.Generator("cuda").manual_seed(0))
    assert samples.device.type == "cuda" and set(samples.unique().tolist()) <= {0.0, 1.0}
    mean, cov = gaussian_stats(on_gpu(samples))
    assert mean.shape == (128,) and cov.shape == (128, 128)


@cuda
def test_the_paper_profile_runs_on_the_gpu_by_default(tmp_path):
    tiny = ["max_train_per_task=128", "eval_test_per_task=128", "eval_k=50", "epochs=2", "task_epochs=2",
            "fid_features=none", "sample_grids=false"]
    args = ["--methods", "finetune,ocm", "--streams", "mini", "--seeds", "0", "--profile", "paper",
            "--workers", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args + [x for s in tiny for x in ("--set", s)]) == 0
    records = ResultStore(tmp_path).records()
    assert len(records) == 2 and all(r["device"].startswith("cuda:") for r in records)
