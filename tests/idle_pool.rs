//! An idle pool burns no CPU: its workers sleep (after a short spin)
//! instead of polling for work.

use std::time::Duration;

/// User + system CPU time of this process, in clock ticks (Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn an_idle_pool_does_not_spin() {
    let Some(_) = cpu_ticks() else {
        eprintln!("no /proc/self/stat: skipping");
        return;
    };
    let pool = lvars::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    // Give the workers some work, then let them go idle.
    assert_eq!(pool.install(|| lvars::join(|| 1, || 2)), (1, 2));
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks().unwrap() - before;
    // Four spinning workers would burn ~200 ticks (at 100 Hz) in 500 ms.
    assert!(used <= 5, "idle pool used {used} clock ticks of CPU in 500 ms");
    drop(pool);
}
