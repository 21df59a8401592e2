//! CPU time and peak resident set of a process under test and its descendants, read from `/proc` (proc(5)).
//!
//! A peer may run more than one process (Hive Gateway with `--fork`): what it costs is the whole tree's.

use std::time::Duration;

/// `/proc/<pid>/stat` counts CPU time in clock ticks of `sysconf(_SC_CLK_TCK)`, which the kernel fixes at
/// `USER_HZ` = 100 for user space on Linux (proc(5), "utime"; time(7), "The software clock").
const TICKS_PER_SECOND: u64 = 100;

struct Stat {
    ppid: u32,
    /// utime + stime: the process's own threads.
    own: u64,
    /// cutime + cstime: its children that ended and were waited for.
    reaped: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: fields count from the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat { ppid: field(4)? as u32, own: field(14)? + field(15)?, reaped: field(16)? + field(17)? })
}

/// `root` and every living process below it.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some(s) = stat(pid) {
                    parents.push((pid, s.ppid));
                }
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found
}

/// CPU time (user + system) spent so far by `root`, its living descendants and the children it has reaped.
pub fn cpu(root: u32) -> Duration {
    let ticks: u64 = tree(root)
        .into_iter()
        .filter_map(stat)
        .enumerate()
        .map(|(i, s)| if i == 0 { s.own + s.reaped } else { s.own })
        .sum();
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// The peak resident set (VmHWM) of `root` and its living descendants, added up, in MiB: exact for one process,
/// an upper bound for several (their peaks need not coincide).
pub fn peak_rss_mb(root: u32) -> Option<f64> {
    let kb: f64 = tree(root)
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .sum();
    (kb > 0.0).then_some(kb / 1024.0)
}

/// The resident set (VmRSS) of one process now, in MiB: what it holds at this moment, where `peak_rss_mb` reports the
/// most it ever held.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Ends `root`'s descendants (SIGKILL, by pid): a peer's forked workers would outlive their killed parent.
pub fn kill_descendants(root: u32) {
    let pids: Vec<String> = tree(root).into_iter().skip(1).map(|p| p.to_string()).collect();
    if !pids.is_empty() {
        let _ = std::process::Command::new("kill").arg("-KILL").args(&pids).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_resident_set() {
        let me = std::process::id();
        let before = cpu(me);
        // Spins until a tick shows (10 ms of CPU), however busy the machine is; 5 s at most.
        let started = std::time::Instant::now();
        let mut spins = 0u64;
        while cpu(me) == before && started.elapsed() < Duration::from_secs(5) {
            for _ in 0..100_000 {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        assert!(cpu(me) > before, "spinning shows in utime");
        assert!(peak_rss_mb(me).is_some_and(|mb| mb > 1.0));
        assert!(rss_mb(me).is_some_and(|mb| mb > 1.0 && mb <= peak_rss_mb(me).unwrap_or(0.0) + 1.0));
        assert_eq!(tree(me)[0], me);
    }
}
