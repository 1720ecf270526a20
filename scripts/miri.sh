#!/usr/bin/env bash
# Runs the tests of the unsafe-heavy modules under Miri (undefined
# behaviour, data races, aliasing) when the nightly toolchain has it, and
# says so and succeeds when it does not.
#
# Covered: the lock-free set's unit tests (data::iset) and any unit test
# under sched:: (task header, stack jobs) or lvar:: (waiter list); the
# session-less cores' get/put protocol on the waiter list
# (tests/exactly_once.rs, raw_* and a_dropped_pending_get_*); and tasks on
# a real pool, inline and stolen (tests/fork_inline.rs), and handler
# callbacks (detached tasks) in a small traversal (tests/handlers.rs),
# unless MIRI_QUICK=1. Tests too large for Miri are left out (tests/join.rs runs
# for more than 15 minutes under Miri; the set's 100,000-insert test too).
# About 6 minutes in all on a 2-core machine, plus the first build.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "Miri not available: skipped"
    exit 0
fi

step() { printf '\n=== miri: %s\n' "$*"; }

# Tree Borrows: crossbeam-epoch (our reclamation) is not compatible with
# Stacked Borrows (crossbeam-rs/crossbeam#545); crossbeam's own CI runs it
# under Tree Borrows. Ignore leaks: crossbeam-epoch never frees its global
# collector and the records of exited threads (crossbeam-rs/crossbeam#579);
# our own leaks are checked by tests/leaks.rs instead.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-ignore-leaks}"
export CARGO_TERM_COLOR=never

cargo +nightly miri --version
cargo +nightly miri setup >/dev/null

step "unit tests: lock-free set, task header, stack jobs, waiter list"
cargo +nightly miri test --lib -- data::iset sched:: lvar:: \
    --skip listeners_added_while_inserting_see_every_element_exactly_once

step "session-less cores: gets, puts and cancellation on the waiter list"
cargo +nightly miri test --test exactly_once -- raw_ a_dropped_pending_get

if [[ "${MIRI_QUICK:-0}" != 1 ]]; then
    step "tasks on a pool: inline path, kept wakers, grandchildren, panics"
    cargo +nightly miri test --test fork_inline

    step "handler callbacks on a pool: detached tasks and the session's count"
    cargo +nightly miri test --test handlers -- a_handler_driven_traversal

    step "handler callbacks that hold an element back, then park (deferred.rs); a map dropped before its callbacks run"
    cargo +nightly miri test --test handlers -- an_element_delivered_before_its_callback_parks \
        a_map_handler_outlives_the_map
fi

step "done"
