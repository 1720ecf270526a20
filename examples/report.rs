//! The quick scaling report: every workload of the benches at reduced
//! size, at 1 and 2 threads, each variant against its peers in the same
//! run, in well under a minute.
//!
//! ```text
//! cargo run --release --example report -- [--json] [--no-plot] [--plot PATH]
//! ```
//!
//! Prints one table (workload, variant, threads, median, runs, ratio to the
//! workload's baseline, ratio to the best peer at the same thread count);
//! with `--json`, one JSON object per row instead. Writes a plot of the
//! speedups to `docs/scaling.png` unless `--no-plot`.
//!
//! The workload code is the benches' own (`benches/workloads/`,
//! `examples/bf_traverse/graph.rs`), included by path, so the report and
//! `cargo bench` measure the same functions. Each variant runs once to warm
//! up, then at least [`MIN_RUNS`] times and until [`BUDGET`] is spent (at
//! most [`MAX_RUNS`]); the median of those runs is reported. Every run
//! checks its result.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/workloads/fib.rs"]
mod fib;
#[path = "bf_traverse/graph.rs"]
mod graph;
#[path = "../benches/workloads/iset.rs"]
mod iset;
#[path = "../benches/workloads/latency.rs"]
mod latency;
#[path = "../benches/workloads/wavefront.rs"]
mod wavefront;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graph::{bfs_lvars, bfs_rayon, bfs_sequential, Graph, Reached, Work};

const THREADS: [usize; 2] = [1, 2];
const MIN_RUNS: usize = 5;
const MAX_RUNS: usize = 31;
/// Measuring time per variant and thread count, after the warm-up run.
const BUDGET: Duration = Duration::from_millis(250);

// The reduced sizes (the benches' defaults are larger).
const FIB_N: u64 = 25;
const ISET_KEYS: usize = 1 << 18;
const BFS_VERTICES: usize = 10_000;
const BFS_EDGES: usize = 80_000;
const BFS_WORK_MICROS: u64 = 1;
const ROUND_TRIPS: usize = 2_000;
const LCS_N: usize = 2048;
const LCS_BLOCK: usize = 128;

/// A workload: its name in the table, what it does, and the row every
/// other row of it is compared with.
struct Workload {
    name: &'static str,
    what: String,
    baseline: (&'static str, usize),
}

struct Row {
    workload: &'static str,
    variant: &'static str,
    threads: usize,
    median: Duration,
    runs: usize,
}

impl Row {
    fn ms(&self) -> f64 {
        self.median.as_secs_f64() * 1e3
    }

    /// Peers are the other implementations: neither ours nor sequential.
    fn is_peer(&self) -> bool {
        !self.variant.starts_with("lvars") && self.variant != "sequential"
    }
}

/// Collects the rows, measuring each variant as it is added.
#[derive(Default)]
struct Report {
    workloads: Vec<Workload>,
    rows: Vec<Row>,
    /// The one-minute load average when the report started (Linux), since
    /// other processes on the machine show in every two-thread figure.
    load: Option<String>,
}

impl Report {
    fn workload(&mut self, name: &'static str, what: String, baseline: (&'static str, usize)) {
        self.workloads.push(Workload { name, what, baseline });
    }

    /// Measures `run` (one checked iteration per call; what it returns is
    /// dropped outside the timed part) and records it under the last
    /// workload. `run` is dropped, with its pool, before the next variant.
    fn add<O>(&mut self, variant: &'static str, threads: usize, mut run: Box<dyn FnMut() -> O>) {
        let workload = self.workloads.last().expect("a workload first").name;
        eprint!("  {workload} {variant} t={threads} ...");
        drop(run());
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < MIN_RUNS || (start.elapsed() < BUDGET && times.len() < MAX_RUNS) {
            let t = Instant::now();
            let out = run();
            times.push(t.elapsed());
            drop(out);
        }
        times.sort();
        let row = Row {
            workload,
            variant,
            threads,
            median: times[times.len() / 2],
            runs: times.len(),
        };
        eprintln!(" {:.3} ms", row.ms());
        self.rows.push(row);
    }

    /// Adds `sequential` at one thread, then every variant of `parallel`
    /// at every thread count, in that order; `setup` builds each (`None`:
    /// not measured at that thread count).
    fn add_all<O>(
        &mut self,
        sequential: Option<&'static str>,
        parallel: &[&'static str],
        mut setup: impl FnMut(&'static str, usize) -> Option<Box<dyn FnMut() -> O>>,
    ) {
        let seq = sequential.map(|v| (v, 1));
        let par = THREADS.into_iter().flat_map(|t| parallel.iter().map(move |&v| (v, t)));
        for (v, t) in seq.into_iter().chain(par) {
            if let Some(run) = setup(v, t) {
                self.add(v, t, run);
            }
        }
    }

    fn find(&self, workload: &str, variant: &str, threads: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.variant == variant && r.threads == threads)
    }

    /// The workload's baseline row for `row`.
    fn baseline(&self, row: &Row) -> Option<&Row> {
        let w = self.workloads.iter().find(|w| w.name == row.workload)?;
        self.find(w.name, w.baseline.0, w.baseline.1)
    }

    /// The fastest peer of `row`'s workload at `row`'s thread count.
    fn best_peer(&self, row: &Row) -> Option<&Row> {
        self.rows
            .iter()
            .filter(|r| r.workload == row.workload && r.threads == row.threads && r.is_peer())
            .min_by_key(|r| r.median)
    }

    /// `row`'s median over `other`'s (lower is better).
    fn ratio(row: &Row, other: Option<&Row>) -> Option<f64> {
        other.map(|o| row.median.as_secs_f64() / o.median.as_secs_f64())
    }
}

fn measure_all(r: &mut Report) {
    r.workload(
        "fib",
        format!("fib({FIB_N}) with a fork at every call"),
        (fib::SEQUENTIAL, 1),
    );
    r.add_all(Some(fib::SEQUENTIAL), &fib::PARALLEL, |v, t| {
        Some(fib::setup(v, t, FIB_N))
    });

    let keys: Arc<[u64]> = iset::keys(ISET_KEYS).into();
    let distinct = iset::distinct(&keys);
    r.workload(
        "iset",
        format!("{ISET_KEYS} set inserts ({distinct} distinct) split over the threads"),
        ("mutex_hashset", 1),
    );
    r.add_all(None, &iset::VARIANTS, |v, t| {
        Some(iset::setup(v, t, Arc::clone(&keys), distinct))
    });

    let g = Arc::new(Graph::rand_local(BFS_VERTICES, BFS_EDGES, 42));
    let work = Work::calibrate(BFS_WORK_MICROS);
    let want = bfs_sequential(&g, 0, work);
    r.workload(
        "bf_traverse",
        format!(
            "traversal of a random local graph ({BFS_VERTICES} vertices, {BFS_EDGES} edges, {} reached), \
             {BFS_WORK_MICROS} us of work per vertex",
            want.vertices
        ),
        ("sequential", 1),
    );
    r.add_all(Some("sequential"), &["rayon", "lvars"], |v, t| {
        Some(bfs_setup(v, t, &g, work, want))
    });

    r.workload(
        "wake_latency",
        format!("ping-pong of {ROUND_TRIPS} round trips, each message waking a parked receiver"),
        ("crossbeam_channel", 2),
    );
    r.add_all(None, &latency::VARIANTS, |v, t| {
        latency::thread_counts(v)
            .contains(&t)
            .then(|| latency::setup(v, t, ROUND_TRIPS))
    });

    let grid = Arc::new(wavefront::Grid::new(LCS_N, LCS_BLOCK));
    let lcs = grid.lcs_sequential();
    r.workload(
        "wavefront",
        format!("LCS of two {LCS_N}-letter strings (= {lcs}) as a wavefront of {LCS_BLOCK}x{LCS_BLOCK} DP blocks"),
        (wavefront::SEQUENTIAL, 1),
    );
    r.add_all(Some(wavefront::SEQUENTIAL), &wavefront::PARALLEL, |v, t| {
        Some(wavefront::setup(v, t, &grid, lcs))
    });
}

/// The bf_traverse variants (`examples/bf_traverse/graph.rs`), each on its
/// own pool, checking the reached count and checksum against `want`.
fn bfs_setup(variant: &str, threads: usize, g: &Arc<Graph>, work: Work, want: Reached) -> Box<dyn FnMut()> {
    let g = Arc::clone(g);
    match variant {
        "sequential" => Box::new(move || assert_eq!(bfs_sequential(&g, 0, work), want)),
        "rayon" => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(pool.install(|| bfs_rayon(&g, 0, work)), want))
        }
        "lvars" => {
            let pool = lvars::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(bfs_lvars(&pool, &g, 0, work), want))
        }
        other => panic!("unknown bf_traverse variant {other:?}"),
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}x"))
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

fn print_table(r: &Report, cores: usize, elapsed: Duration) {
    let load = r
        .load
        .as_ref()
        .map_or_else(String::new, |l| format!(", load average {l} at the start"));
    println!("lvars scaling report: {cores} core(s) (available_parallelism){load}, mimalloc");
    println!(
        "median of each variant's runs (after one warm-up run); ratios = this median / the other's, lower is better"
    );
    for w in &r.workloads {
        println!(
            "  {}: {}; baseline {} at {} thread(s)",
            w.name, w.what, w.baseline.0, w.baseline.1
        );
    }
    println!();
    println!(
        "{:<13} {:<18} {:>7} {:>11} {:>5} {:>8} {:>8}  best peer",
        "workload", "variant", "threads", "median", "runs", "vs base", "vs peer"
    );
    for row in &r.rows {
        let peer = r.best_peer(row);
        println!(
            "{:<13} {:<18} {:>7} {:>8.3} ms {:>5} {:>8} {:>8}  {}",
            row.workload,
            row.variant,
            row.threads,
            row.ms(),
            row.runs,
            fmt_ratio(Report::ratio(row, r.baseline(row))),
            fmt_ratio(Report::ratio(row, peer)),
            peer.map_or("-", |p| p.variant)
        );
    }
    println!("\ntotal {:.1} s", elapsed.as_secs_f64());
}

/// `s` as a JSON string literal (the names here are plain identifiers, but
/// quote and backslash are escaped all the same).
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(x: Option<f64>) -> String {
    x.map_or_else(|| "null".into(), |x| format!("{x:.4}"))
}

fn print_json(r: &Report, cores: usize) {
    for row in &r.rows {
        println!(
            "{{\"workload\":{},\"variant\":{},\"threads\":{},\"median_ms\":{:.6},\"runs\":{},\"vs_baseline\":{},\"vs_best_peer\":{},\"cores\":{}}}",
            json_str(row.workload),
            json_str(row.variant),
            row.threads,
            row.ms(),
            row.runs,
            json_num(Report::ratio(row, r.baseline(row))),
            json_num(Report::ratio(row, r.best_peer(row))),
            cores
        );
    }
}

mod plot {
    //! The speedup plot: one panel per workload, a pair of bars per variant
    //! (1 and 2 threads), speedup = baseline median / variant median on a
    //! log scale, with the break-even line at 1, and a panel of notes.

    use std::time::Duration;

    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    use plotters::style::{register_font, FontStyle};

    use super::{Report, Row, MAX_RUNS, MIN_RUNS, THREADS};

    type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
    type Error = Box<dyn std::error::Error>;

    const FONT: &str = "sans-serif";
    const COLOURS: [RGBColor; 2] = [RGBColor(66, 114, 196), RGBColor(237, 125, 49)];

    pub fn draw(r: &Report, cores: usize, elapsed: Duration, path: &str) -> Result<(), Error> {
        // Text is drawn with an embedded font (ab_glyph), so the plot needs
        // no font from the system.
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded font did not load")?;
        register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(|_| "the embedded font did not load")?;
        let root = BitMapBackend::new(path, (1600, 1150)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!("lvars scaling: speedup over each workload's baseline (higher is better), {cores} core(s)");
        let root = root.titled(&title, (FONT, 26).into_font().style(FontStyle::Bold))?;
        let panels = root.split_evenly((3, 2));
        for (w, area) in r.workloads.iter().zip(&panels) {
            let rows: Vec<&Row> = r.rows.iter().filter(|row| row.workload == w.name).collect();
            if let Some(base) = rows.first().and_then(|row| r.baseline(row)) {
                let caption = format!("{} (baseline: {} t={})", w.name, w.baseline.0, w.baseline.1);
                panel(area, &caption, &rows, base)?;
            }
        }
        if let Some(area) = panels.get(r.workloads.len()) {
            notes(area, r, cores, elapsed)?;
        }
        root.present()?;
        Ok(())
    }

    /// One workload's bars.
    fn panel(area: &Area<'_>, caption: &str, rows: &[&Row], base: &Row) -> Result<(), Error> {
        let mut variants: Vec<&str> = Vec::new();
        for row in rows {
            if !variants.contains(&row.variant) {
                variants.push(row.variant);
            }
        }
        let speedup = |row: &Row| base.median.as_secs_f64() / row.median.as_secs_f64();
        let (lo, hi) = rows
            .iter()
            .map(|row| speedup(row))
            .fold((1.0f64, 1.0f64), |(lo, hi), s| (lo.min(s), hi.max(s)));
        let (lo, hi) = (lo / 2.0, hi * 2.5);
        let right = variants.len() as f64 - 0.5;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..right, (lo..hi).log_scale())?;
        // Bars are centred on the integers, so the labels are the integer
        // key points, named after their variant.
        let names = variants.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(variants.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                let on_tick = (x - i).abs() < 1e-6 && i >= 0.0;
                names
                    .get(i as usize)
                    .filter(|_| on_tick)
                    .map_or_else(String::new, |n| n.to_string())
            })
            .y_labels(6)
            .y_desc("speedup (log scale)")
            .y_label_formatter(&|y| short(*y))
            .light_line_style(RGBColor(238, 238, 238))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for (k, t) in THREADS.into_iter().enumerate() {
            let colour = COLOURS[k];
            // t = 1 left of the variant's tick, t = 2 right of it.
            let bar = |row: &Row| {
                let i = variants.iter().position(|v| *v == row.variant).unwrap_or(0) as f64;
                let x = if k == 0 { i - 0.2 } else { i + 0.2 };
                (x, speedup(row))
            };
            let mine: Vec<(f64, f64)> = rows.iter().filter(|row| row.threads == t).map(|row| bar(row)).collect();
            chart
                .draw_series(
                    mine.iter()
                        .map(|&(x, s)| Rectangle::new([(x - 0.18, lo), (x + 0.18, s)], colour.filled())),
                )?
                .label(format!("{t} thread{}", if t == 1 { "" } else { "s" }))
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
            let above = (FONT, 12)
                .into_font()
                .into_text_style(area)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.draw_series(
                mine.iter()
                    .map(|&(x, s)| Text::new(short(s), (x, s * 1.05), above.clone())),
            )?;
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 1.0), (right, 1.0)],
            BLACK.stroke_width(1),
        )))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }

    /// A speedup with two significant digits or so.
    fn short(x: f64) -> String {
        if x >= 10.0 {
            format!("{x:.0}")
        } else if x >= 0.1 {
            format!("{x:.2}")
        } else {
            format!("{x:.3}")
        }
    }

    /// How the figures were measured, and what each workload is.
    fn notes(area: &Area<'_>, r: &Report, cores: usize, elapsed: Duration) -> Result<(), Error> {
        let mut lines = vec![
            format!("{cores} core(s) (available_parallelism); mimalloc; one warm-up run, then"),
            format!("{MIN_RUNS} to {MAX_RUNS} runs per bar; the median; all in one run of the report"),
            format!(
                "({:.1} s). Speedup = baseline median / bar's median.",
                elapsed.as_secs_f64()
            ),
            r.load
                .as_ref()
                .map_or_else(String::new, |l| format!("One-minute load average at the start: {l}.")),
            String::new(),
        ];
        for w in &r.workloads {
            lines.extend(wrap(&format!("{}: {}.", w.name, w.what), 80));
        }
        let style = (FONT, 15).into_font();
        for (i, line) in lines.iter().enumerate() {
            area.draw(&Text::new(line.as_str(), (30, 30 + 22 * i as i32), style.clone()))?;
        }
        Ok(())
    }

    /// `text` in lines of at most about `width` characters, broken at spaces.
    fn wrap(text: &str, width: usize) -> Vec<String> {
        let mut lines = vec![String::new()];
        for word in text.split(' ') {
            let line = lines.last_mut().expect("never empty");
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(format!("    {word}"));
            } else {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
        }
        lines
    }
}

struct Args {
    json: bool,
    plot: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        json: false,
        plot: Some("docs/scaling.png".into()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--json" => a.json = true,
            "--no-plot" => a.plot = None,
            "--plot" => a.plot = Some(it.next().ok_or("--plot needs a path")?),
            "-h" | "--help" => return Err("usage: report [--json] [--no-plot] [--plot PATH]".into()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    eprintln!("measuring on {cores} core(s) ...");
    let start = Instant::now();
    let mut report = Report {
        load: load_average(),
        ..Report::default()
    };
    measure_all(&mut report);
    let elapsed = start.elapsed();
    if args.json {
        print_json(&report, cores);
    } else {
        print_table(&report, cores, elapsed);
    }
    if let Some(path) = args.plot {
        if let Some(dir) = std::path::Path::new(&path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| eprintln!("cannot create {}: {e}", dir.display()));
        }
        match plot::draw(&report, cores, elapsed, &path) {
            Ok(()) => eprintln!("plot written to {path}"),
            Err(e) => {
                eprintln!("cannot draw the plot to {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}
