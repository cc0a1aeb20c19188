//! The run report, as human-readable text or as one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::procfs::RssStats;
use crate::run::LoadResult;
use crate::send::Stats;

/// The pre-encoded requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolInfo {
    pub requests: u64,
    pub traces: u64,
    pub spans: u64,
    pub bytes: u64,
    pub wall: Duration,
    pub cpu: Duration,
}

/// Waiting until the server's span count covers what was accepted.
#[derive(Debug, Clone, Copy)]
pub struct Queryable {
    pub reached: bool,
    pub initial_spans: u64,
    pub target_spans: u64,
    pub final_spans: u64,
    /// From the start of the send phase until the count was reached.
    pub wall: Duration,
}

/// What was seen of the server process.
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo {
    pub pid: u32,
    pub rss: RssStats,
    /// CPU time during the send phase.
    pub cpu_send: Option<Duration>,
    /// CPU time from the start of sending until queryable (or the wait ended).
    pub cpu_total: Option<Duration>,
}

/// Everything a run reports.
#[derive(Debug, Clone)]
pub struct Report {
    pub mode: &'static str,
    pub seed: u64,
    pub transports: Vec<&'static str>,
    pub connections: usize,
    pub in_flight: usize,
    pub spans_per_request: u64,
    pub planned_spans: Option<u64>,
    pub duration: Option<Duration>,
    pub rate: Option<f64>,
    pub pool: PoolInfo,
    pub load: LoadResult,
    pub queryable: Option<Queryable>,
    /// Client CPU during the send phase, and until the end of the wait.
    pub client_cpu_send: Duration,
    pub client_cpu_total: Duration,
    pub server: Option<ServerInfo>,
    /// For `--one-big-trace`: the trace's id in hex.
    pub trace_id: Option<String>,
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentiles of microsecond samples.
pub fn latency(samples_us: &[u64]) -> Latency {
    if samples_us.is_empty() {
        return Latency::default();
    }
    let mut v = samples_us.to_vec();
    v.sort_unstable();
    let at = |q: f64| {
        let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1] as f64 / 1_000.0
    };
    Latency {
        count: v.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: v[v.len() - 1] as f64 / 1_000.0,
        mean: v.iter().sum::<u64>() as f64 / v.len() as f64 / 1_000.0,
    }
}

fn per_sec(count: u64, wall: Duration) -> f64 {
    let s = wall.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { 0.0 }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn secs(d: Duration) -> f64 {
    round(d.as_secs_f64(), 3)
}

fn stats_json(s: &Stats) -> Value {
    let l = latency(&s.latencies_us);
    json!({
        "requests": s.requests,
        "requests_ok": s.requests_ok,
        "requests_failed": s.requests_failed,
        "spans_sent": s.spans_sent,
        "spans_accepted": s.spans_accepted,
        "spans_rejected": s.spans_rejected,
        "spans_failed": s.spans_failed,
        "throttled_replies": s.throttled,
        "retries": s.retries,
        "backoff_s": secs(s.backoff),
        "latency_ms": {
            "p50": round(l.p50, 3),
            "p90": round(l.p90, 3),
            "p99": round(l.p99, 3),
            "max": round(l.max, 3),
            "mean": round(l.mean, 3),
        },
        "errors": s.errors,
    })
}

impl Report {
    /// Whether the run did everything it set out to.
    pub fn ok(&self) -> bool {
        let total = self.load.total();
        total.requests_failed == 0
            && !self.load.timed_out
            && self.queryable.is_none_or(|q| q.reached)
    }

    pub fn to_json(&self) -> Value {
        let total = self.load.total();
        let wall = self.load.wall;
        let q = self.queryable.map(|q| {
            json!({
                "reached": q.reached,
                "initial_spans": q.initial_spans,
                "target_spans": q.target_spans,
                "final_spans": q.final_spans,
                "wall_s": secs(q.wall),
                "spans_per_s": round(per_sec(total.spans_accepted, q.wall), 1),
                "lag_after_send_s": secs(q.wall.saturating_sub(wall)),
            })
        });
        let server = self.server.map(|s| {
            json!({
                "pid": s.pid,
                "max_rss_bytes": s.rss.max,
                "rss_start_bytes": s.rss.first,
                "rss_end_bytes": s.rss.last,
                "rss_samples": s.rss.samples,
                "cpu_send_s": s.cpu_send.map(secs),
                "cpu_until_queryable_s": s.cpu_total.map(secs),
            })
        });
        let l = latency(&total.latencies_us);
        json!({
            "mode": self.mode,
            "seed": self.seed,
            "transports": self.transports,
            "connections_per_transport": self.connections,
            "in_flight_per_connection": self.in_flight,
            "spans_per_request": self.spans_per_request,
            "planned_spans": self.planned_spans,
            "duration_s": self.duration.map(secs),
            "offered_rate_spans_per_s": self.rate,
            "trace_id": self.trace_id,
            "pool": {
                "requests": self.pool.requests,
                "traces": self.pool.traces,
                "spans": self.pool.spans,
                "encoded_bytes": self.pool.bytes,
                "bytes_per_span": round(self.pool.bytes as f64 / self.pool.spans.max(1) as f64, 1),
                "encode_wall_s": secs(self.pool.wall),
                "encode_cpu_s": secs(self.pool.cpu),
            },
            "requests": total.requests,
            "requests_ok": total.requests_ok,
            "requests_failed": total.requests_failed,
            "spans_sent": total.spans_sent,
            "spans_accepted": total.spans_accepted,
            "spans_rejected": total.spans_rejected,
            "spans_failed": total.spans_failed,
            "spans_dropped_client": self.load.dropped_spans,
            "offered_spans": self.load.offered_spans,
            "throttled_replies": total.throttled,
            "retries": total.retries,
            "timed_out": self.load.timed_out,
            "send_wall_s": secs(wall),
            "send_spans_per_s": round(per_sec(total.spans_accepted, wall), 1),
            "latency_ms": {
                "p50": round(l.p50, 3),
                "p90": round(l.p90, 3),
                "p99": round(l.p99, 3),
                "max": round(l.max, 3),
                "mean": round(l.mean, 3),
            },
            "queryable": q,
            "client_cpu_send_s": secs(self.client_cpu_send),
            "client_cpu_total_s": secs(self.client_cpu_total),
            "client_cpu_us_per_span": round(
                self.client_cpu_send.as_secs_f64() * 1e6 / total.spans_sent.max(1) as f64, 3),
            "server": server,
            "per_transport": {
                "grpc": self.load.grpc.as_ref().map(stats_json),
                "http": self.load.http.as_ref().map(stats_json),
            },
            "ok": self.ok(),
        })
    }

    pub fn to_text(&self) -> String {
        let total = self.load.total();
        let wall = self.load.wall;
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "devtrace-loadgen: {} over {} ({} connection(s) each, {} in flight per connection), {} spans/request, seed {}",
            self.mode,
            self.transports.join(" + "),
            self.connections,
            self.in_flight,
            self.spans_per_request,
            self.seed
        );
        if let Some(id) = &self.trace_id {
            let _ = writeln!(w, "  trace id           {id}");
        }
        let _ = writeln!(
            w,
            "  pre-encoded        {} requests, {} traces, {} spans, {:.1} MB ({:.0} B/span) in {:.2} s",
            self.pool.requests,
            self.pool.traces,
            self.pool.spans,
            self.pool.bytes as f64 / 1e6,
            self.pool.bytes as f64 / self.pool.spans.max(1) as f64,
            self.pool.wall.as_secs_f64()
        );
        if let Some(rate) = self.rate {
            let _ = writeln!(
                w,
                "  offered            {} spans at {rate:.0} spans/s, {} dropped on the client (queue full)",
                self.load.offered_spans, self.load.dropped_spans
            );
        }
        let _ = writeln!(
            w,
            "  requests           {} sent, {} ok, {} failed, {} throttled replies, {} retries",
            total.requests,
            total.requests_ok,
            total.requests_failed,
            total.throttled,
            total.retries
        );
        let _ = writeln!(
            w,
            "  spans              {} sent, {} accepted, {} rejected, {} failed",
            total.spans_sent, total.spans_accepted, total.spans_rejected, total.spans_failed
        );
        let _ = writeln!(
            w,
            "  send phase         {:.3} s, {:.0} spans/s accepted{}",
            wall.as_secs_f64(),
            per_sec(total.spans_accepted, wall),
            if self.load.timed_out {
                " (SEND TIMEOUT)"
            } else {
                ""
            }
        );
        if let Some(q) = self.queryable {
            let _ = writeln!(
                w,
                "  until queryable    {:.3} s, {:.0} spans/s ({}; server count {} -> {}, target {})",
                q.wall.as_secs_f64(),
                per_sec(total.spans_accepted, q.wall),
                if q.reached { "reached" } else { "NOT REACHED" },
                q.initial_spans,
                q.final_spans,
                q.target_spans
            );
        }
        let l = latency(&total.latencies_us);
        let _ = writeln!(
            w,
            "  request latency    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        );
        let _ = writeln!(
            w,
            "  client CPU         {:.2} s while sending ({:.2} µs/span), {:.2} s in all",
            self.client_cpu_send.as_secs_f64(),
            self.client_cpu_send.as_secs_f64() * 1e6 / total.spans_sent.max(1) as f64,
            self.client_cpu_total.as_secs_f64()
        );
        if let Some(s) = self.server {
            let cpu = |d: Option<Duration>| {
                d.map_or("?".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
            };
            let _ = writeln!(
                w,
                "  {:<18} max RSS {:.1} MiB (start {:.1}, end {:.1}), CPU {} while sending, {} until queryable",
                format!("server (pid {})", s.pid),
                s.rss.max as f64 / 1_048_576.0,
                s.rss.first as f64 / 1_048_576.0,
                s.rss.last as f64 / 1_048_576.0,
                cpu(s.cpu_send),
                cpu(s.cpu_total)
            );
        }
        for (name, stats) in [("grpc", &self.load.grpc), ("http", &self.load.http)] {
            if let Some(s) = stats {
                let l = latency(&s.latencies_us);
                let _ = writeln!(
                    w,
                    "  {name:<18} {} spans accepted, {} throttled, {} failed requests, p50 {:.2} ms, p99 {:.2} ms",
                    s.spans_accepted, s.throttled, s.requests_failed, l.p50, l.p99
                );
                for e in &s.errors {
                    let _ = writeln!(w, "    error: {e}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=100).map(|i| i * 1_000).collect();
        let l = latency(&samples);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50, 50.0);
        assert_eq!(l.p99, 99.0);
        assert_eq!(l.max, 100.0);
        assert_eq!(latency(&[]).count, 0);
        assert_eq!(latency(&[2_500]).p99, 2.5);
    }
}
