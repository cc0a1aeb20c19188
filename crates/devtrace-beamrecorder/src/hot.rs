//! Functions called too often to record one call at a time. A traced call costs the VM its
//! trace delivery (≈ 1 µs here) and the recording a few records: a function the program calls
//! a million times a second in a loop (`Enum.reduce(1..2_000_000, fn …)`) made a 20 ms
//! computation take 1.6 s and filled a flight recorder's window with it. A function one
//! scheduler calls `Options::hot_calls` (the tracer's) times within one
//! [`WINDOW_TICKS`] window, with no message recorded on that scheduler between two of them, is
//! *hot*: it is named in the names log (the reader says so), and the runtime
//! takes it (`hot/0`) and turns its trace pattern off, after which its time is its callers'.
//! A function whose calls send or take messages — a GenServer's callback, a loop passing a
//! token — is how processes work together, and stays recorded however often it runs: only
//! computation in a loop is left out. Counting is per scheduler thread (no shared line on the
//! hot path); the window is the heartbeat thread's tick.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use devtrace_recorder::names;
use devtrace_recorder::ring::RecorderFile;

use crate::ffi::Term;
use crate::word_hash::{WordMap, WordSet};

/// Advanced every [`TICK_MS`] by the file's heartbeat thread.
static TICK: AtomicU32 = AtomicU32::new(0);
pub(crate) const TICK_MS: u32 = 10;
/// The window a function's calls are counted in: 100 ms.
pub(crate) const WINDOW_TICKS: u32 = 10;

/// Called by the heartbeat thread every [`TICK_MS`].
pub(crate) fn tick() {
    TICK.fetch_add(1, Ordering::Relaxed);
}

/// Notes a message sent or taken, recorded on this thread: the calls made here so far are no
/// loop of computation.
pub(crate) fn message() {
    MESSAGES.with(|m| m.set(m.get() + 1));
}

thread_local! {
    /// This scheduler's calls by code id in the current window: (window, count, the
    /// [`MESSAGES`] count at its last call).
    static COUNTS: RefCell<WordMap<u32, (u32, u32, u64)>> = RefCell::new(WordMap::default());
    /// The messages this scheduler recorded.
    static MESSAGES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The hot functions' codes as of a generation of [`HotCalls::generation`].
    static KNOWN: RefCell<(u32, WordSet<u32>)> = RefCell::new((0, WordSet::default()));
}

/// The hot functions found and not yet taken by the runtime.
#[derive(Default)]
struct Found {
    codes: WordSet<u32>,
    untaken: Vec<(Term, Term, u32)>,
}

pub(crate) struct HotCalls {
    /// Calls in one window that make a function hot (0: none ever is).
    threshold: u32,
    found: Mutex<Found>,
    /// Counts the functions found, so each thread copies the set only when it grows.
    generation: AtomicU32,
}

impl HotCalls {
    pub(crate) fn new(threshold: u32) -> HotCalls {
        HotCalls {
            threshold,
            found: Mutex::new(Found::default()),
            generation: AtomicU32::new(0),
        }
    }

    /// Counts a call of `code`; true when this call makes its function
    /// hot on this thread (once a window at most: [`HotCalls::found`] keeps each function
    /// once). Any message recorded on this thread since the function's last call here starts
    /// the count again: a process's reply can be recorded after its caller's request on the
    /// same scheduler, so whose message came last does not tell whether the caller sent one
    /// (a GenServer called in a tight loop must never be hot).
    pub(crate) fn count(&self, code: u32) -> bool {
        if self.threshold == 0 {
            return false;
        }
        let window = TICK.load(Ordering::Relaxed) / WINDOW_TICKS;
        let messages = MESSAGES.with(std::cell::Cell::get);
        COUNTS.with(|counts| {
            let mut counts = counts.borrow_mut();
            let entry = counts.entry(code).or_insert((window, 0, messages));
            if entry.0 != window || entry.2 != messages {
                entry.0 = window;
                entry.1 = 0;
            }
            entry.2 = messages;
            entry.1 += 1;
            entry.1 == self.threshold
        })
    }

    /// Notes `function` (`code` in the log) as hot, the first time: named in the names log and
    /// kept for the runtime to take.
    pub(crate) fn found(&self, file: &RecorderFile, function: (Term, Term, u32), code: u32) {
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        if found.codes.insert(code) {
            found.untaken.push(function);
            names::write_hot_function(file, code, self.threshold, WINDOW_TICKS * TICK_MS);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Whether `code`'s function was found hot (one atomic load while none is). Its probes,
    /// compiled in, call the tracer however hot it is: they are dropped here.
    pub(crate) fn is_hot(&self, code: u32) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == 0 {
            return false;
        }
        KNOWN.with(|known| {
            let mut known = known.borrow_mut();
            if known.0 != generation {
                let found = self.found.lock().unwrap_or_else(|e| e.into_inner());
                *known = (generation, found.codes.clone());
            }
            known.1.contains(&code)
        })
    }

    /// The hot functions found since the last call.
    pub(crate) fn take(&self) -> Vec<(Term, Term, u32)> {
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut found.untaken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the tick is the process's, and another test advancing it meanwhile would move
    // this one's window.
    #[test]
    fn a_function_is_hot_at_its_thresholds_call_within_one_window_and_counted_again_in_the_next() {
        let hot = HotCalls::new(1_000);
        let hits = (0..2_500).filter(|_| hot.count(7)).count();
        // Within one window (nothing ticks here), the 1,000th call only.
        assert_eq!(hits, 1);
        let never = HotCalls::new(0);
        assert!(!(0..5_000).any(|_| never.count(8)));

        let hot = HotCalls::new(10);
        assert!(!(0..9).any(|_| hot.count(3)));
        for _ in 0..WINDOW_TICKS {
            tick();
        }
        // The nine of the window before are forgotten.
        assert!(!(0..9).any(|_| hot.count(3)));
        assert!(hot.count(3));
    }

    #[test]
    fn a_function_with_messages_recorded_between_its_calls_is_not_hot() {
        let hot = HotCalls::new(10);
        // A server's callback, or a client calling it in a loop (its request, then the
        // server's reply on the same scheduler): messages between each two calls.
        for _ in 0..100 {
            assert!(!hot.count(5));
            message();
        }
        // The same calls with none between: hot at the tenth.
        assert_eq!((0..20).filter(|_| hot.count(5)).count(), 1);
    }

    #[test]
    fn a_function_found_hot_is_named_once_and_known_to_every_thread() {
        let path = std::env::temp_dir().join(format!("devtrace-beam-hot-{}", std::process::id()));
        let file = RecorderFile::create(
            &path,
            devtrace_recorder::ring::Layout::new(64, 8, 8, 4096),
            1,
            0,
            "{}",
        )
        .unwrap();
        let hot = HotCalls::new(5);
        assert!(!hot.is_hot(4));
        hot.found(&file, (11, 12, 2), 4);
        hot.found(&file, (11, 12, 2), 4);
        assert!(hot.is_hot(4) && !hot.is_hot(5));
        assert!(std::thread::scope(|s| s
            .spawn(|| hot.is_hot(4))
            .join()
            .unwrap()));
        assert_eq!(hot.take(), vec![(11, 12, 2)]);
        assert!(hot.take().is_empty());
        let named = names::Names::read(&file).hot_functions;
        assert_eq!(named.len(), 1);
        assert_eq!(named[&4].calls, 5);
        let _ = std::fs::remove_file(&path);
    }
}
