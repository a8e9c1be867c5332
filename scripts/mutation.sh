#!/usr/bin/env bash
# Mutation testing of the reference components: cargo-mutants changes one thing at a time in a
# file (a return value, an operator, a condition) and the README's main command judges each
# mutant, through the test that runs it (harness/tests/certify_cli.rs,
# run_certifies_the_builtin_store_through_both_drivers). A mutant the run still passes is a
# rule certify does not check, or a change that cannot be seen (an equivalent mutant).
#
# Every mutant is a rebuild, so this is not part of CI: run it for one file, in the background,
# and record the survivors in mutants.md.
#
#   scripts/mutation.sh reference-runtime/src/in_memory/state_memory.rs
#   scripts/mutation.sh            # the files of the target, one after another
#   MUTANTS_ARGS=--in-place scripts/mutation.sh FILE   # in a scratch worktree: reuses its target/
#
# Needs cargo-mutants: cargo install --locked cargo-mutants
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || {
  echo "cargo-mutants is not installed: cargo install --locked cargo-mutants" >&2
  exit 2
}
files=("$@")
if ((${#files[@]} == 0)); then
  files=(
    reference-runtime/src/in_memory/state_memory.rs
    reference-runtime/src/in_memory/lock_memory.rs
    reference-runtime/src/sidecar/state_routes.rs
    reference-runtime/src/in_memory/pubsub_memory.rs
    reference-runtime/src/sidecar/pubsub_routes.rs
  )
fi
out="${MUTANTS_OUT:-$HOME/.cache/certify/mutants}"
for file in "${files[@]}"; do
  [[ -f $file ]] || { echo "no such file: $file" >&2; exit 2; }
  name=$(basename "$file" .rs)
  echo "== $file (results in $out/$name/mutants.out)"
  mkdir -p "$out/$name"
  # Exit status 2 (some mutants survived) and 3 (some timed out: the run hung on them, which
  # counts as caught) are the findings, not errors here.
  # shellcheck disable=SC2086
  # No baseline: cargo-mutants would run it with the mutated package's own tests, which are not
  # the judge here; the unmutated main command passes in CI on every run.
  # Only the judging test target is built and run for each mutant.
  cargo mutants --file "$file" --test-package harness --cargo-arg=--test=certify_cli --baseline skip \
    --timeout 300 --build-timeout 1200 --output "$out/$name" ${MUTANTS_ARGS:-} \
    -- -- --exact run_certifies_the_builtin_store_through_both_drivers || { status=$?; [[ $status == 2 || $status == 3 ]]; }
done
