//! Process CPU time and resident memory from `/proc` (Linux only).
//!
//! CPU time is `utime + stime` of `/proc/PID/stat`, which covers all threads
//! of the process, dead ones included. It is counted in clock ticks of
//! `USER_HZ`, which the kernel fixes at 100 per second for user space on
//! every mainstream architecture, so the resolution is 10 ms.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Clock ticks per second of `/proc/PID/stat` times.
const USER_HZ: u64 = 100;

fn proc_dir(pid: Option<u32>) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}")),
        None => PathBuf::from("/proc/self"),
    }
}

/// User plus system CPU time of a process (`None`: this process).
pub fn cpu_time(pid: Option<u32>) -> Result<Duration> {
    let path = proc_dir(pid).join("stat");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_stat_cpu(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `utime + stime` from the text of `/proc/PID/stat`.
fn parse_stat_cpu(text: &str) -> Result<Duration> {
    // The command name (field 2) is in parentheses and may contain spaces,
    // so count fields from the last ')'.
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .context("no ')' after the command name")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    if fields.len() < 13 {
        bail!("only {} fields", fields.len() + 2);
    }
    let utime: u64 = fields[11].parse().context("utime")?;
    let stime: u64 = fields[12].parse().context("stime")?;
    let ticks = utime + stime;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Resident set size (`VmRSS`) of a process, in bytes.
pub fn rss_bytes(pid: Option<u32>) -> Result<u64> {
    let path = proc_dir(pid).join("status");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS line in {}", path.display()))
}

fn parse_vm_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Memory of a process as sampled during a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RssStats {
    pub samples: u64,
    pub first: u64,
    pub max: u64,
    pub last: u64,
}

/// Samples a process's RSS on a background thread (not on the async
/// runtime, so a busy runtime does not skew the samples).
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<RssStats>,
}

impl RssSampler {
    /// Starts sampling `pid` every `period`; fails if it cannot be read now.
    pub fn start(pid: u32, period: Duration) -> Result<Self> {
        let first = rss_bytes(Some(pid))
            .with_context(|| format!("sampling the memory of process {pid}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let mut stats = RssStats {
                    samples: 1,
                    first,
                    max: first,
                    last: first,
                };
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(period);
                    // The process may be gone; keep what was seen.
                    if let Ok(rss) = rss_bytes(Some(pid)) {
                        stats.samples += 1;
                        stats.max = stats.max.max(rss);
                        stats.last = rss;
                    }
                }
                stats
            })
            .context("starting the RSS sampler thread")?;
        Ok(Self { stop, handle })
    }

    /// Stops sampling and returns what was seen.
    pub fn stop(self) -> Result<RssStats> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the RSS sampler thread panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 4 0 100 1000000 200";
        assert_eq!(parse_stat_cpu(stat).unwrap(), Duration::from_millis(3_250));
        assert!(parse_stat_cpu("1 (x) S 1 2").is_err());
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tdevtrace\nVmPeak:\t  9000 kB\nVmRSS:\t  5120 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(5120 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn reads_own_process() {
        assert!(rss_bytes(None).unwrap() > 0);
        cpu_time(None).unwrap();
        let sampler = RssSampler::start(std::process::id(), Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let stats = sampler.stop().unwrap();
        assert!(stats.samples >= 2 && stats.max >= stats.first && stats.max > 0);
    }
}
