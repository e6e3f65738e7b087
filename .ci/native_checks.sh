#!/usr/bin/env bash
# Checks of the C extensions that the plain test run cannot see (issue 24). Run by .ci/run
# with the project's .venv active, from the repository root. Each step prints its time.
#
# The C-path tests run at their fast tier (-m "not slow": the real encodes and
# subprocess checks among them run once, in the main test run); each step's CLI round
# trip is its real encode -> decode.
#
#   1. debug allocator: the C-path tests (two processes) and one CLI encode -> decode
#      (in the background from the start, checked after step 2) in Python's dev mode
#      (PYTHONDEVMODE=1, i.e. `-X dev`, inherited by every child: the pytest-xdist
#      workers and the CLI) with PYTHONMALLOC=debug (a C-API call without the GIL is
#      fatal);
#   2. sanitizers: a copy of the tree with the extensions built with AddressSanitizer +
#      UndefinedBehaviorSanitizer runs the same tests and a short decoder fuzz (3,000
#      mutations of 1- and 3-region files); any report
#      aborts the process and fails the step;
#   3. other Pythons: for 3.12 and 3.13 (pyenv, the two side by side), a venv from
#      requirements.txt (made in the background while steps 1 and 2 run), the
#      extensions built by `pip install -e .`, the decoder/bitstream/native tests, the
#      decoder/bitstream tests on the numba/NumPy path, and one CLI round trip each (the
#      numba path's on 3.12, the C path's on 3.13).
#
# MORIC_CI_SKIP_OTHER_PYTHONS=1 skips step 3 (for a quick local run).
#
# Every step shares one persistent XLA compilation cache (MORIC_TEST_JAX_CACHE, which
# .ci/run sets; the tests read it through tests/conftest.py, the CLI encodes as
# JAX_COMPILATION_CACHE_DIR): a training program is compiled once for all steps and
# Pythons (what the steps check is the C code around it, not XLA's compiler).
set -euo pipefail
ROOT="$PWD"
WORK="$(mktemp -d)"
export MORIC_TEST_JAX_CACHE="${MORIC_TEST_JAX_CACHE:-$WORK/jax_cache}"
export JAX_COMPILATION_CACHE_DIR="$MORIC_TEST_JAX_CACHE" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0.5
# What these steps check is the C code around the encoder, not XLA's output: its cheap
# optimisation level, as in the tests (tests/conftest.py), compiles ~40% faster.
export JAX_DISABLE_MOST_OPTIMIZATIONS=1
C_TESTS=(tests/test_native.py tests/test_fast_entropy.py tests/test_decoder.py tests/test_bitstream.py)

step() {  # step NAME COMMAND...: runs it, prints its wall time, fails CI if it fails
  local name="$1"; shift
  local t0=$SECONDS
  echo "== native check: $name"
  "$@"
  echo "== native check: $name: ok in $((SECONDS - t0)) s"
}

require_c() {  # the C kernels must be the ones running (the build is optional in setup.py)
  python -c 'from moric_jax.coding import fast_ans; from moric_jax.decoder import networks
assert fast_ans.backend() == "c" and networks.compiled(), "C extensions not built"'
}

debug_allocator() {
  require_c
  PYTHONMALLOC=debug PYTHONDEVMODE=1 python -m pytest -q -p no:cacheprovider -n 2 -m "not slow" "${C_TESTS[@]}"
}

debug_cli_round_trip() {  # run in the background from the start (see below)
  PYTHONMALLOC=debug PYTHONDEVMODE=1 python .ci/cli_round_trip.py "$WORK/debug"
}

BACKGROUND=()   # PIDs of the jobs started by `background`, killed if the script exits
background() {  # background NAME COMMAND...: runs it, its output to $WORK/NAME.log
  local name="$1"; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  BACKGROUND+=("$!")
  printf -v "PID_$name" '%s' "$!"
}

finished() {  # finished NAME: waits for the job, prints its log, returns its status
  local pid_var="PID_$1" rc=0
  wait "${!pid_var}" || rc=$?
  cat "$WORK/$1.log"
  return "$rc"
}

sanitizers() {
  local copy="$WORK/asan" flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
  mkdir -p "$copy"
  git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
    [[ -f "$f" && "$f" != *.so ]] && printf '%s\0' "$f"; done | tar --null -cf - -T - | tar -xf - -C "$copy"
  (cd "$copy" && CFLAGS="$flags" LDFLAGS="$flags" python setup.py -q build_ext --inplace >/dev/null 2>&1)
  for so in "$copy"/moric_jax/coding/_ans*.so "$copy"/moric_jax/decoder/_synth*.so; do
    nm -D "$so" | grep -q __asan_report || { echo "$so is not instrumented"; return 1; }
  done
  python .ci/fuzz_base_files.py "$WORK/fuzz_base" >/dev/null   # plain build: no ASan here
  # jaxlib throws C++ exceptions: libstdc++ must be loaded with the ASan runtime.
  (cd "$copy" &&
   export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)" \
          ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 &&
   python -c 'import moric_jax, sys; assert moric_jax.__file__.startswith(sys.argv[1]), moric_jax.__file__' "$copy" &&
   require_c &&
   python -m pytest -q -p no:cacheprovider -n 2 -m "not slow" "${C_TESTS[@]}" &&
   python -m experiments.fuzz_decoder --count=3000 --seed=1 --files "$WORK"/fuzz_base/*.moric)
}

pyenv_python() {  # pyenv_python 3.12: prints the newest pyenv 3.12.x interpreter, or nothing
  local py=""
  for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python; do
    [[ -x "$cand" ]] && py="$cand"
  done
  echo "$py"
}

python_venvs() {  # python_venvs 3.12 3.13: a venv with requirements.txt for each, side by side
  # (pip is one process on one core: the installs overlap; each logs to venvV.log)
  local v py pids=() failed=0
  for v in "$@"; do
    py="$(pyenv_python "$v")"
    [[ -n "$py" ]] || continue
    ("$py" -m venv "$WORK/venv$v" && . "$WORK/venv$v/bin/activate" &&
     python -m pip install --quiet --upgrade pip &&
     python -m pip install --quiet -r requirements.txt) >"$WORK/venv$v.log" 2>&1 &
    pids+=("$!:$v")
  done
  for p in "${pids[@]}"; do
    wait "${p%%:*}" || { echo "Python ${p#*:}: venv failed:"; tail -30 "$WORK/venv${p#*:}.log"; failed=1; }
  done
  return "$failed"
}

other_python() {  # other_python 3.12 (its venv made by python_venvs)
  local v="$1"
  if [[ -z "$(pyenv_python "$v")" ]]; then
    echo "== native check: Python $v: SKIPPED (pyenv has no Python $v on this machine)"
    return 0
  fi
  (. "$WORK/venv$v/bin/activate" &&
   python -m pip install --quiet --no-deps -e . &&
   require_c &&
   python -m pytest -q -p no:cacheprovider -n 2 -m "not slow" "${C_TESTS[@]}" &&
   MORIC_ANS=numba MORIC_SYNTHESIS=numpy python -m pytest -q -p no:cacheprovider -n 2 -m "not slow" \
       tests/test_decoder.py tests/test_bitstream.py &&
   if [[ "$v" == "$NUMBA_CLI_PYTHON" ]]; then
     MORIC_ANS=numba MORIC_SYNTHESIS=numpy python .ci/cli_round_trip.py "$WORK/py$v-numba"
   else
     python .ci/cli_round_trip.py "$WORK/py$v-c"
   fi)
}

other_pythons() {  # other_pythons 3.12 3.13: other_python for each, side by side (their
  # builds, process starts and CLI encodes are mostly one core each); logs printed after
  local v p pids=() failed=0
  for v in "$@"; do
    other_python "$v" >"$WORK/py$v.log" 2>&1 &
    pids+=("$!:$v")
  done
  for p in "${pids[@]}"; do
    v="${p#*:}"
    if wait "${p%%:*}"; then echo "-- Python $v: ok"; else echo "-- Python $v: FAILED"; failed=1; fi
    cat "$WORK/py$v.log"
  done
  return "$failed"
}

# One CLI round trip per other Python (the two run side by side, so the longer one sets
# the step's time): the numba/NumPy path's on 3.12, the C path's on 3.13 (and on 3.11
# under the debug allocator in step 1). Both paths' tests run on both Pythons; the CLI
# around them is the same code.
NUMBA_CLI_PYTHON=3.12
trap 'for p in "${BACKGROUND[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
# Beside steps 1 and 2 (their tests leave cores idle between processes): the debug
# allocator's CLI round trip (one process, ~1 core: mostly tracing and compiling) and the
# other Pythons' venvs (pip, mostly waiting on the disk); each is checked after step 2.
require_c
background debug_cli debug_cli_round_trip
OTHER_PYTHONS=0
if [[ "${MORIC_CI_SKIP_OTHER_PYTHONS:-0}" != 1 ]]; then
  OTHER_PYTHONS=1
  background venvs python_venvs 3.12 3.13
fi
step "debug allocator (PYTHONMALLOC=debug, dev mode)" debug_allocator
step "ASan + UBSan build: C tests and 3,000 fuzzed files" sanitizers
step "debug allocator: CLI encode -> decode (run beside steps 1 and 2)" finished debug_cli
if [[ "$OTHER_PYTHONS" == 1 ]]; then
  step "Python 3.12 and 3.13 venvs (requirements.txt, both at once, made during steps 1-2)" finished venvs
  step "Python 3.12 and 3.13 (both at once): extensions, C and numba paths" other_pythons 3.12 3.13
fi
