//! The seed's shopping cart, twice.
//!
//! Two concurrent inserts (Book and Shoes) go into a cart that is read once
//! the program is "done". Part 1 uses OS threads and a `Mutex<BTreeMap>` and
//! reads the map without waiting for the writers: the answer depends on the
//! schedule. Part 2 uses an LVar frozen after the session's barrier
//! (`run_par_then_freeze`): the answer is the same in every run.
//!
//! ```text
//! cargo run --release --example shopping_cart -- --runs 2000
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;

use lvars::run_par_then_freeze;

mod cart;
use cart::lvar_cart_session;

const DEFAULT_RUNS: usize = 2000;

/// `--runs N` (or `--runs=N`); anything else is a usage error.
fn parse_runs() -> Result<usize, String> {
    let mut runs = DEFAULT_RUNS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--runs=") {
            Some(v) => v.to_string(),
            None if arg == "--runs" => args.next().ok_or("--runs needs a value")?,
            None => return Err(format!("unknown argument {arg:?} (usage: shopping_cart [--runs N])")),
        };
        runs = value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--runs expects a positive integer, got {value:?}"))?;
    }
    Ok(runs)
}

/// `{Book: 1, Shoes: 1}`, in key order.
fn show(cart: &BTreeMap<&str, u32>) -> String {
    let items: Vec<String> = cart.iter().map(|(item, n)| format!("{item}: {n}")).collect();
    format!("{{{}}}", items.join(", "))
}

/// One run of the racy cart: the reader does not wait for the writers.
fn racy_cart() -> BTreeMap<&'static str, u32> {
    let cart: Arc<Mutex<BTreeMap<&'static str, u32>>> = Arc::default();
    let writers: Vec<_> = ["Book", "Shoes"]
        .into_iter()
        .map(|item| {
            let cart = Arc::clone(&cart);
            thread::spawn(move || {
                cart.lock().unwrap().insert(item, 1);
            })
        })
        .collect();
    // The bug: read now, join later.
    let seen = cart.lock().unwrap().clone();
    for w in writers {
        w.join().unwrap();
    }
    seen
}

/// One run of the LVar cart.
fn lvar_cart() -> BTreeMap<&'static str, u32> {
    let frozen = run_par_then_freeze(lvar_cart_session).expect("the LVar cart cannot fail");
    frozen
        .into_iter()
        .map(|(item, n)| (item, n.into_inner().expect("stored entries are never bottom")))
        .collect()
}

/// Runs `f` `runs` times and counts each distinct outcome.
fn tally(runs: usize, mut f: impl FnMut() -> BTreeMap<&'static str, u32>) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..runs {
        *seen.entry(show(&f())).or_insert(0) += 1;
    }
    seen
}

fn report(title: &str, runs: usize, outcomes: &BTreeMap<String, usize>) {
    println!("{title}: {runs} runs, {} distinct outcome(s)", outcomes.len());
    for (outcome, count) in outcomes {
        println!("    {outcome:<22} seen {count:>6} times");
    }
    println!();
}

fn main() {
    let runs = match parse_runs() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };

    println!("Two tasks put Book and Shoes into a cart; the cart is then read.\n");

    let racy = tally(runs, racy_cart);
    report("1. threads + Mutex<BTreeMap>, read without waiting", runs, &racy);

    let lvar = tally(runs, lvar_cart);
    report("2. LVar<MapUnion<_, Max<u32>>> with run_par_then_freeze", runs, &lvar);

    println!(
        "The racy version reads whatever the writers have done so far, so its answer \
         depends on the schedule\n(any of {{}}, {{Book: 1}}, {{Shoes: 1}}, {{Book: 1, Shoes: 1}} is possible). \
         The LVar version only\nfreezes the cart after the session's barrier, when every put is in; puts \
         join, so their order does\nnot matter, and the answer is the same in every run."
    );
    assert_eq!(lvar.len(), 1, "the LVar cart must be deterministic");
    assert_eq!(lvar.keys().next().map(String::as_str), Some("{Book: 1, Shoes: 1}"));
}
