//! LVish's `bf_traverse`: breadth-first traversal of a PBBS-style random
//! local graph with a fixed amount of busy work at every reached vertex.
//!
//! The LVar version is a set of visited vertices plus a handler that
//! inserts each vertex's neighbours; the set is frozen after the session's
//! barrier, so the reached count and checksum are the same on every run.
//! It is compared, in the same run, with a sequential BFS and a rayon
//! level-synchronous BFS with an atomic visited bitmap.
//!
//! ```text
//! cargo run --release --example bf_traverse -- [--vertices N] [--edges M]
//!     [--work MICROS] [--threads T] [--file EDGE_LIST] [--seed S] [--runs R]
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod graph;

use std::sync::Arc;
use std::time::{Duration, Instant};

use graph::{bfs_lvars, bfs_rayon, bfs_sequential, Graph, Work};
use lvars::ThreadPoolBuilder;

struct Args {
    vertices: usize,
    edges: usize,
    work: u64,
    threads: Vec<usize>,
    file: Option<String>,
    seed: u64,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        vertices: 40_000,
        edges: 320_000,
        work: 1,
        threads: vec![1, 2],
        file: None,
        seed: 42,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{s:?}: {e}"));
        match flag.as_str() {
            "--vertices" => a.vertices = num(value()?)? as usize,
            "--edges" => a.edges = num(value()?)? as usize,
            "--work" => a.work = num(value()?)?,
            "--threads" => a.threads = vec![num(value()?)? as usize],
            "--file" => a.file = Some(value()?),
            "--seed" => a.seed = num(value()?)?,
            "--runs" => a.runs = (num(value()?)? as usize).max(1),
            "-h" | "--help" => {
                return Err(
                    "usage: bf_traverse [--vertices N] [--edges M] [--work MICROS] [--threads T] \
                     [--file EDGE_LIST] [--seed S] [--runs R]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn best_of<T: PartialEq + std::fmt::Debug>(runs: usize, mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut first = None;
    for _ in 0..runs {
        let t = Instant::now();
        let out = f();
        best = best.min(t.elapsed());
        match &first {
            None => first = Some(out),
            Some(prev) => assert_eq!(prev, &out, "a traversal gave two different results"),
        }
    }
    (first.expect("at least one run"), best)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let g = Arc::new(match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(2)
            });
            Graph::load_edge_list(&text).unwrap_or_else(|e| {
                eprintln!("{path}: {e}");
                std::process::exit(2)
            })
        }
        None => Graph::rand_local(args.vertices, args.edges, args.seed),
    });
    let work = Work::calibrate(args.work);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "graph: {} vertices, {} edges; {} us of work per vertex; {} core(s); best of {} run(s)",
        g.num_vertices(),
        g.num_edges(),
        args.work,
        cores,
        args.runs
    );

    let (seq, seq_time) = best_of(args.runs, || bfs_sequential(&g, 0, work));
    println!("reached {} vertices, checksum {:016x}", seq.vertices, seq.checksum);
    println!(
        "{:<12} {:>8} {:>12} {:>10} {:>12}",
        "variant", "threads", "time", "vs ideal", "vs rayon"
    );
    println!(
        "{:<12} {:>8} {:>10.2}ms {:>10} {:>12}",
        "sequential",
        1,
        ms(seq_time),
        "",
        ""
    );
    for &t in &args.threads {
        let ideal = Duration::from_micros(seq.vertices as u64 * args.work) / t as u32;
        let rp = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("rayon pool");
        let (r, rayon_time) = best_of(args.runs, || rp.install(|| bfs_rayon(&g, 0, work)));
        assert_eq!(r, seq, "rayon BFS disagrees with the sequential one");
        let pool = ThreadPoolBuilder::new().num_threads(t).build().expect("lvars pool");
        let (l, lvars_time) = best_of(args.runs, || bfs_lvars(&pool, &g, 0, work));
        assert_eq!(l, seq, "the LVar traversal disagrees with the sequential one");
        for (name, time) in [("rayon", rayon_time), ("lvars", lvars_time)] {
            println!(
                "{:<12} {:>8} {:>10.2}ms {:>9.2}x {:>11.2}x",
                name,
                t,
                ms(time),
                time.as_secs_f64() / ideal.as_secs_f64(),
                time.as_secs_f64() / rayon_time.as_secs_f64()
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
