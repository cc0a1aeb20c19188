//! What the drainer costs a record: writes fib(N)'s call and return records (as the recorder
//! would, one stamp a nanosecond apart... scaled so calls above fib(16) last ≥ 1 ms) into a
//! recorder file, then reads them back and builds spans as the live drainer does (a Cursor pass
//! per 1/64 of the ring, fed to a Builder), and prints the nanoseconds a record of each side.
//!
//! `cargo run --release -p devtrace-recorder --example drain_cost [N] [rounds]`

use std::time::Instant;

use devtrace_recorder::ring::{Cursor, EventKind, Layout, RecorderFile, pack_meta};
use devtrace_recorder::{Builder, BuilderOptions};

fn fib_records(n: u32, ts: &mut u64, out: &mut Vec<(u64, u64)>) {
    *ts += 40;
    out.push((*ts, pack_meta(EventKind::Call, 1, 0)));
    if n >= 2 {
        fib_records(n - 1, ts, out);
        fib_records(n - 2, ts, out);
    }
    *ts += 40;
    out.push((*ts, pack_meta(EventKind::Return, 1, 0)));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(27);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut records = Vec::new();
    fib_records(n, &mut 0, &mut records);
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("drain-cost-{}", std::process::id()));
    let layout = Layout::for_size(16 << 20).unwrap();
    let batch = (layout.record_capacity() / 64) as usize;
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let file = RecorderFile::create(&dir, layout, 1, 0, "{}").unwrap();
        file.populate();
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 1_000_000,
            ..Default::default()
        });
        let mut cursor = Cursor::new();
        let mut streams = Vec::new();
        let mut w = file.writer(1);
        let (mut write_ns, mut drain_ns, mut spans) = (0u128, 0u128, 0usize);
        for part in records.chunks(batch) {
            let t = Instant::now();
            for &(ts, meta) in part {
                file.push(&mut w, ts, meta);
            }
            write_ns += t.elapsed().as_nanos();
            let t = Instant::now();
            cursor.read_into(&file, None, &mut streams);
            for s in &streams {
                builder.feed(s, &|_| None);
            }
            spans += builder.take_spans().len();
            drain_ns += t.elapsed().as_nanos();
        }
        let per = |ns: u128| ns as f64 / records.len() as f64;
        best = (best.0.min(per(write_ns)), best.1.min(per(drain_ns)));
        assert_eq!(builder.events as usize, records.len());
        assert!(spans > 0);
        std::fs::remove_file(&dir).ok();
    }
    println!(
        "fib({n}): {} records; best of {rounds}: write {:.1} ns a record, drain {:.1} ns a record",
        records.len(),
        best.0,
        best.1
    );
}
