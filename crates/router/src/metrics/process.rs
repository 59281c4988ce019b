//! The process's own figures (`process_*`), as the Prometheus client libraries export them
//! on Linux, read from `/proc/self` at each scrape. Where a file cannot be read (another OS,
//! a restricted `/proc`) the figure is absent rather than made up.

use std::path::Path;

/// Clock ticks per second in `/proc`'s times (USER_HZ): 100 on every Linux ABI, what the Go
/// and Python clients assume too, so no libc call is needed to ask.
const USER_HZ: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcessStats {
    /// User and system CPU time spent, in seconds.
    pub(crate) cpu_seconds: Option<f64>,
    /// Resident memory, in bytes.
    pub(crate) resident_memory_bytes: Option<u64>,
    /// Virtual memory, in bytes.
    pub(crate) virtual_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub(crate) open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`ulimit -n`).
    pub(crate) max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub(crate) start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/self` (and the boot time from `/proc/stat`).
    pub(crate) fn read() -> ProcessStats {
        let proc = Path::new("/proc");
        let read = |p: &str| std::fs::read_to_string(proc.join(p)).ok();
        let stat = read("self/stat").as_deref().and_then(parse_stat);
        let boot = read("stat").as_deref().and_then(parse_boot_time);
        ProcessStats {
            cpu_seconds: stat.map(|s| s.cpu_ticks as f64 / USER_HZ),
            resident_memory_bytes: read("self/status")
                .as_deref()
                .and_then(|s| parse_status_kib(s, "VmRSS"))
                .map(|kib| kib * 1024),
            virtual_memory_bytes: stat.map(|s| s.vsize_bytes),
            // The directory's own descriptor is counted, as the client libraries count it.
            open_fds: std::fs::read_dir(proc.join("self/fd"))
                .ok()
                .map(|d| d.count() as u64),
            max_fds: read("self/limits")
                .as_deref()
                .and_then(parse_max_open_files),
            start_time_seconds: stat
                .zip(boot)
                .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / USER_HZ),
        }
    }
}

/// The fields of `/proc/self/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Start time after boot, in clock ticks.
    start_ticks: u64,
    /// Virtual memory size, in bytes.
    vsize_bytes: u64,
}

/// Parses `/proc/self/stat` (proc(5)). The command name (field 2) is in parentheses and may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` begins with field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        vsize_bytes: field(23)?,
    })
}

/// A `Key:   1234 kB` line of `/proc/self/status`, in KiB.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The soft limit of `Max open files` in `/proc/self/limits` (none when unlimited).
fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the Unix epoch.
fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (ring ward) (x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                cpu_ticks: 325,
                start_ticks: 123_456,
                vsize_bytes: 987_654_321,
            })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
        let status = "Name:\tringward\nVmSize:\t  964504 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(12_345));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 1048576              files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(
            parse_max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process_on_linux() {
        let s = ProcessStats::read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        let started = s.start_time_seconds.expect("start time");
        assert!(started > now - 3_600.0 && started <= now + 1.0, "{s:?}");
        assert!(s.resident_memory_bytes.expect("rss") > 1 << 20, "{s:?}");
        assert!(
            s.virtual_memory_bytes.expect("vsize") >= s.resident_memory_bytes.expect("rss"),
            "{s:?}"
        );
        let (open, max) = (s.open_fds.expect("fds"), s.max_fds.unwrap_or(u64::MAX));
        assert!(open >= 3 && open <= max, "{s:?}");
        assert!(s.cpu_seconds.expect("cpu") >= 0.0, "{s:?}");
    }
}
