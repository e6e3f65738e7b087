"""Shared test fixtures: tiny deterministic images and a fast config; the test tiers.

Two tiers (issue 33): ``bash .ci/fast`` runs ``pytest -m "not slow"`` (no real encode
past a few steps, no subprocess, no SLURM cluster: about 2 minutes on 2 cores once the
venv exists); ``bash .ci/run`` runs everything. ``SLOW`` below names the tests of the
full tier only, by node-id prefix (a module, a test, or a parametrized test), so the
tier is read in one place, including for modules that do not import anything from here.
"""
import os

import jax
import numpy as np
import pytest

# Compiled XLA programs are reused across tests (and runs) of the same shapes.
jax.config.update("jax_compilation_cache_dir",
                  os.environ.get("MORIC_TEST_JAX_CACHE", "/tmp/moric_jax_test_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
# The tests' encodes run tens of steps: compiling their programs is most of their time,
# and XLA's cheap optimisation level compiles them ~40% faster (CPU time of a 40-step
# 32x32 encode: 67 s -> 42 s). The float results differ in the last bits from a
# user's encode, so the tests that pin bytes (test_pinned_files.py) switch the full
# optimisation back on; MORIC_TEST_FULL_XLA=1 keeps it on for every test. Set in the
# environment too, for the CLIs and launchers the tests start.
FULL_XLA = os.environ.get("MORIC_TEST_FULL_XLA") == "1"
if not FULL_XLA:
  os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
  jax.config.update("jax_disable_most_optimizations", True)


# Node-id prefixes of the tests that only the full tier runs (marker ``slow``). Each entry
# must still match a test (checked at collection): a renamed test cannot slip out.
SLOW = (
    # Subprocesses: the CLI, the launchers, interpreters started to check imports.
    "tests/test_cli.py",
    "tests/test_compress_launcher.py",
    "tests/test_gpu_check.py",
    "tests/test_slurm.py",                                   # a SLURM cluster, too
    "tests/test_coolchic_side_by_side.py",                   # a fake Cool-chic's CLI
    "tests/test_interrupt.py::test_sigint_keeps_output_and_exits_cleanly",
    "tests/test_interrupt.py::test_sigkill_keeps_output",
    "tests/test_interrupt.py::test_killed_encode_resumes_from_checkpoint_to_the_same_file",
    "tests/test_launch.py::test_local_executor_sweep_2_images_x_2_lambdas",
    "tests/test_launch.py::test_preempted_job_is_requeued_and_resumes_to_the_same_row",
    "tests/test_launch.py::test_killed_job_fails_then_rerun_resumes_from_its_checkpoint",
    "tests/test_sweep.py::test_tiny_sweep_writes_results_plot_and_bd_and_resumes",
    "tests/test_sweep.py::test_sweep_bad_glob_is_one_line",
    "tests/test_sweep.py::test_sweep_unknown_launcher_is_one_line",
    "tests/test_sweep.py::test_slurm_launcher_without_slurm_is_one_line",
    "tests/test_sweep.py::test_collect_unknown_anchor_is_one_line",
    "tests/test_sweep.py::test_batch_images_groups_same_shapes_into_one_job",
    "tests/test_report.py::test_three_front_ends_one_schema",
    "tests/test_odd_inputs.py::test_cli_grey_round_trip_and_limits",
    "tests/test_batched.py::test_sharded_over_two_host_devices_matches_single_device",
    "tests/test_overfit.py::test_compress_launcher_bad_input_is_one_line",
    "tests/test_native.py::test_c_decode_under_the_debug_allocator",
    "tests/test_decoder.py::test_decoder_imports_no_jax",
    "tests/test_fast_entropy.py::test_decoder_modules_do_not_import_jax",
    # Real encodes of more than a few steps (each new shape or config also compiles
    # its own training program: tens of seconds on 2 cores).
    "tests/test_multi_region.py",
    "tests/test_modular_regions.py::test_trained_round_trip_layers_and_cut_file",
    "tests/test_modular_regions.py::test_object_layer_never_makes_the_image_worse_than_layer_0",
    "tests/test_modular_regions.py::test_object_only_moric_file",
    "tests/test_modular_regions.py::test_frozen_region_networks_render_the_trunk_everywhere",
    "tests/test_modular_regions.py::test_lambda_batched_regions_equal_their_own_files",
    "tests/test_pinned_files.py",
    "tests/test_coolchic5_preset.py::test_the_warmup_program_has_constant_settings",
    "tests/test_coolchic5_preset.py::test_the_optimizer_state_is_fresh_at_the_core_and_final_starts",
    "tests/test_coolchic5_preset.py::test_a_resume_at_the_final_phase_start_writes_the_uninterrupted_file",
    "tests/test_overfit.py::test_overfitting_beats_mean_colour_by_far",
    "tests/test_overfit.py::test_same_seed_same_result",
    "tests/test_overfit.py::test_higher_lambda_spends_fewer_bits",
    "tests/test_batched.py::test_lambda_batch_trains_each_point_for_its_lambda",
    "tests/test_batched.py::test_images_x_lambdas_in_one_program_equal_one_by_one",
    "tests/test_batched.py::test_finalize_in_batches_equals_one_trial_at_a_time",
    "tests/test_checkpoints.py::test_resume_from_checkpoint_gives_the_same_result",
    "tests/test_checkpoints.py::test_resume_after_the_warm_up_gives_the_same_result",
    "tests/test_warmup.py::test_encode_with_warmup_reports_every_step_and_round_trips",
    "tests/test_warmup.py::test_warmup_keeps_the_candidate_with_the_lowest_loss",
    "tests/test_memory.py::test_banded_synthesis_and_chunked_arm_equal_the_whole_image",
    "tests/test_warmup.py::test_batched_warmup_matches_one_lambda_at_a_time",
    "tests/test_upsampling.py::test_learned_upsampling_encode_decodes_exactly",
    "tests/test_bitstream.py::test_real_encode_round_trip_and_rate",
    "tests/test_training_procedure.py::test_frozen_final_phase_keeps_the_latents_and_trains_the_networks",
    "tests/test_checkpoints.py::test_diverging_chunk_is_rolled_back_with_lower_learning_rate",
    "tests/test_hard_check.py::test_the_soft_phase_ends_on_the_best_checked_model",
    "tests/test_hard_check.py::test_final_phase_starts_from_the_reloaded_model",
    "tests/test_hard_check.py::test_batched_checks_reload_each_entry_on_its_own",
)


# The modules that take longest on 2 cores (fresh-clone CI, 2026-12-07: each 100-300 s),
# longest first. They run first (below): pytest-xdist's loadscope hands modules out in
# collection order (its own reordering, by number of tests, is switched off in
# pytest_configure: it sent the 3-test, 5-minute pinned-files module out after 15
# minutes), and a long module handed out last keeps one worker busy while the other
# idles (longest-first is the classic fix).
LONGEST_FIRST = (
    "tests/test_pinned_files.py",
    "tests/test_multi_region.py",
    "tests/test_slurm.py",
    "tests/test_batched.py",
    "tests/test_launch.py",
    "tests/test_coolchic5_preset.py",
    "tests/test_interrupt.py",
    "tests/test_checkpoints.py",
    "tests/test_sweep.py",
    "tests/test_warmup.py",
)


def pytest_configure(config):
  if hasattr(config.option, "loadscopereorder"):   # pytest-xdist: keep LONGEST_FIRST
    config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)   # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
  rank = {m: i for i, m in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable
  used = set()
  for item in items:
    for prefix in SLOW:
      if item.nodeid == prefix or item.nodeid.startswith(prefix + ("[" if "::" in prefix
                                                                   else "::")):
        item.add_marker(pytest.mark.slow)
        used.add(prefix)
  if any("::" in str(a) for a in config.args):
    return                          # a few tests asked for by name: nothing to check
  seen_files = {item.nodeid.split("::")[0] for item in items}
  stale = [p for p in SLOW if p.split("::")[0] in seen_files and p not in used]
  if stale:
    raise pytest.UsageError(f"tests/conftest.py: SLOW names no test: {stale}")


def smooth_image(height: int, width: int, seed: int = 0, noise: float = 0.03) -> np.ndarray:
  """A smooth colourful ``(H, W, 3) float32`` test image in [0, 1] with some texture."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / max(height, width)
  img = np.stack([0.5 + 0.4 * np.sin(6 * x + 1.0 * rng.random()),
                  0.5 + 0.4 * np.cos(5 * y + 2 * x),
                  0.5 + 0.3 * np.sin(9 * x * y + 3 * y)], axis=-1)
  img += noise * rng.standard_normal(img.shape)
  return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture
def image32():
  return smooth_image(32, 32)


@pytest.fixture
def tiny_config():
  from moric_jax import presets
  config = presets.default()
  config.num_steps = 120
  config.train.chunk_size = 40
  config.lmbda = 1e-4
  config.quant.num_deltas = 9
  config.train.warmup.candidates = ()   # warm-up has its own tests (test_warmup.py)
  # Adam compiles in 2/3 of SOAP's time (SOAP has its own tests, test_soap.py; the
  # pinned files and the CLI tests run the default's SOAP).
  config.train.optimizer = "adam"
  return config
