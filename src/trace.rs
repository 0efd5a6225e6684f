//! A step trace for profiling big runs: with `SHEQU_TRACE` set in the environment, every step
//! of a build and run prints one line to standard error with the time since the first step,
//! the step's own time, and (on Linux) the process's resident and peak memory, minor page
//! faults and CPU time so far. The manifest's `steps` keep the times either way.

use std::sync::Mutex;
use std::time::Instant;

/// The start of the trace and the end of the last step.
static CLOCK: Mutex<Option<(Instant, Instant)>> = Mutex::new(None);

/// Records that `name` has just finished (the first call starts the clock).
pub(crate) fn step(name: &str) {
    if std::env::var_os("SHEQU_TRACE").is_none() {
        return;
    }
    let now = Instant::now();
    let (total, own) = {
        let mut clock = CLOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (start, last) = clock.get_or_insert((now, now));
        let times = (now - *start, now - *last);
        *last = now;
        times
    };
    eprintln!(
        "trace {:>8.3} s {:>7.3} s  {name:<56} {}",
        total.as_secs_f64(),
        own.as_secs_f64(),
        process_counters()
    );
}

/// Resident and peak memory, minor faults and CPU seconds, from `/proc/self` (empty
/// elsewhere).
fn process_counters() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = 100.0; // USER_HZ on Linux
    match (kb("VmRSS:"), kb("VmHWM:"), field(10), field(14), field(15)) {
        (Some(rss), Some(hwm), Some(minflt), Some(utime), Some(stime)) => format!(
            "rss {:>6} MB  peak {:>6} MB  minflt {minflt:>8}  user {:>6.2} s  sys {:>6.2} s",
            rss / 1024,
            hwm / 1024,
            utime as f64 / ticks,
            stime as f64 / ticks
        ),
        _ => String::new(),
    }
}
