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
