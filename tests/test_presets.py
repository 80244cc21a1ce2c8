"""Named presets: the paper's CN-DPM and LIMix rows as the CLI reaches them."""
import pytest

from bench.planning.grid import expand_grid, parse_names
from bench.planning.profiles import resolve_profile
from methods import METHODS, PRESETS
from methods.core.registry import paper_name
from streams.registry import UnknownNameError


def test_the_paper_presets_expand_to_their_method_and_settings():
    profile = resolve_profile("quick")
    [cndpm] = expand_grid(["cndpm-paper"], ["split-mnist"], [0], profile)
    assert cndpm.method == "cndpm" and cndpm.label_method == "cndpm-paper"
    assert cndpm.method_config["stm_capacity"] == 2000 and cndpm.method_config["max_experts"] == 30
    assert cndpm.method_config["sleep_steps"] == profile.methods["cndpm"]["sleep_steps"]   # profile's still apply
    [limix] = expand_grid(["limix-paper[threshold=100]"], ["split-mnist"], [0], profile)
    assert limix.method == "limix-taskfree" and limix.label_method == "limix-paper[threshold=100]"
    assert (limix.method_config["buffer_size"], limix.method_config["max_components"],
            limix.method_config["replay_samples"], limix.method_config["threshold"]) == (2000, 30, 2000, 100.0)
    assert not METHODS["limix-taskfree"].needs_task_boundaries and METHODS["limix"].needs_task_boundaries
    assert paper_name("cndpm-paper") == "CNDPM" and paper_name("limix-paper[x=1]") == "LIMix"
    assert paper_name("cndpm") is None and paper_name("ocm") == "VAE-ELBO-OCM"
    # a preset's key differs from its plain method's: its settings are in the key
    assert cndpm.key != expand_grid(["cndpm"], ["split-mnist"], [0], profile)[0].key


def test_presets_are_checked_like_methods():
    assert parse_names("cndpm-paper,ocm", METHODS, "methods") == ["cndpm-paper", "ocm"]
    with pytest.raises(UnknownNameError, match="presets: .*cndpm-paper"):
        parse_names("cndpm-papr", METHODS, "methods")
    assert set(PRESETS) >= {"cndpm-paper", "limix-paper"}
