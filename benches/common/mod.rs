//! Helpers shared by the benches (not a bench target itself).

/// Criterion's median estimate for one benchmark of the last run, in
/// nanoseconds, read from `target/criterion/<group>/<id>/new/estimates.json`
/// (the summaries print ratios measured in the same run from these).
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = format!("target/criterion/{group}/{id}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let rest = &text[text.find("\"median\"")?..];
    let at = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '-'))
        .collect();
    num.parse().ok()
}

/// The environment variable `name` parsed, or `default` when it is unset
/// or does not parse (the benches' size knobs).
#[allow(dead_code)]
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A bench's `main`: criterion's group of `$bench`, criterion's final
/// summary, then `$summary` (the table of ratios from the medians).
#[allow(unused_macros)]
macro_rules! bench_main {
    ($bench:ident, $summary:ident) => {
        criterion::criterion_group!(benches, $bench);

        fn main() {
            benches();
            criterion::Criterion::default()
                .configure_from_args()
                .final_summary();
            $summary();
        }
    };
}
#[allow(unused_imports)]
pub(crate) use bench_main;
