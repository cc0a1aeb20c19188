//! A progress bar on stderr for long imports: drawn only on a terminal, at most ten times a
//! second, and erased when done so the summary that follows stands alone.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: &'static str,
    total_bytes: u64,
    total_files: u64,
    bytes: u64,
    files: u64,
    started: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
}

const REDRAW: Duration = Duration::from_millis(100);
const WIDTH: usize = 28;

impl Progress {
    /// A bar for `total_bytes` in `total_files`; silent unless stderr is a terminal and `wanted`.
    pub fn new(label: &'static str, total_bytes: u64, total_files: u64, wanted: bool) -> Self {
        Self {
            label,
            total_bytes,
            total_files,
            bytes: 0,
            files: 0,
            started: Instant::now(),
            last_draw: None,
            enabled: wanted && std::io::stderr().is_terminal(),
        }
    }

    pub fn set(&mut self, bytes: u64, files: u64) {
        self.bytes = bytes.min(self.total_bytes);
        self.files = files;
        self.draw(false);
    }

    fn draw(&mut self, force: bool) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if !force && self.last_draw.is_some_and(|t| now - t < REDRAW) {
            return;
        }
        self.last_draw = Some(now);
        let share = if self.total_bytes == 0 {
            1.0
        } else {
            self.bytes as f64 / self.total_bytes as f64
        };
        let filled = (share * WIDTH as f64).round() as usize;
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "\r\x1b[2K{} [{}{}] {:>3.0}%  {} of {}  {}/s  file {}/{}",
            self.label,
            "#".repeat(filled.min(WIDTH)),
            "-".repeat(WIDTH - filled.min(WIDTH)),
            share * 100.0,
            bytes(self.bytes),
            bytes(self.total_bytes),
            bytes((self.bytes as f64 / elapsed) as u64),
            self.files,
            self.total_files,
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    /// Erases the bar.
    pub fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\r\x1b[2K");
            let _ = err.flush();
        }
        self.enabled = false;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// "1.5 MB", "312 kB", "17 B" (decimal units, as download tools show).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_naturally() {
        assert_eq!(super::bytes(17), "17 B");
        assert_eq!(super::bytes(312_400), "312 kB");
        assert_eq!(super::bytes(1_500_000), "1.5 MB");
        assert_eq!(super::bytes(1_073_741_824), "1.07 GB");
    }
}
