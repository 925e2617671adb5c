//! CPU time from `/proc`, so that figures taken on a shared machine can be set against the CPU
//! time they actually got.
//!
//! On a machine where other work competes for the cores, requests per second and signatures per
//! second both depend on the share each process gets. Dividing by the CPU time spent instead
//! gives a figure per CPU-second that the competition does not change (much), and multiplying
//! by the number of cores gives what an idle machine would allow when CPU is the limit. Time a
//! server spends waiting for `fsync` is not CPU time, so this normalisation is only meaningful
//! for a CPU-bound run.
//!
//! Linux only: elsewhere every reading is `None`.

use std::time::Duration;

/// Clock ticks per second of `utime` and `stime`: 100 on every Linux architecture this runs on
/// (`getconf CLK_TCK`).
const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time of every thread of process `pid` so far.
pub fn process(pid: u32) -> Option<Duration> {
    read(&format!("/proc/{pid}/stat"))
}

/// User plus system CPU time of this process so far.
pub fn this_process() -> Option<Duration> {
    read("/proc/self/stat")
}

/// User plus system CPU time of the calling thread so far.
pub fn this_thread() -> Option<Duration> {
    read("/proc/thread-self/stat")
}

fn read(path: &str) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// Reads `utime` and `stime` (fields 14 and 15) from a `stat` line. The command name, field 2,
/// is in parentheses and may hold spaces, so fields are counted after its closing parenthesis.
fn parse_stat(line: &str) -> Option<Duration> {
    let after_name = &line[line.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(
        ticks.checked_mul(1000 / TICKS_PER_SECOND)?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn stat_fields_are_found_after_the_name() {
        let line =
            "4242 (guardrail server) S 1 4242 4242 0 -1 4194560 9 0 0 0 250 130 0 0 20 0 7 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3_800)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn this_process_reads_when_proc_exists() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(this_process().is_some());
            assert!(this_thread().is_some());
        }
    }
}
