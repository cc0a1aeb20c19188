//! The [`CommitFeed`] of a shared store: spans committed per project, as a thread that
//! listens to the database hears of them (PostgreSQL's notifications, ClickHouse's polled
//! `commits` table), whichever node committed them.

use crate::ProjectId;
use crate::writer::CommitFeed;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the listening thread shares with the feed.
#[derive(Default)]
pub(crate) struct Heard {
    counts: Mutex<HashMap<ProjectId, u64>>,
    stop: AtomicBool,
}

impl Heard {
    /// Adds `spans` committed to `project`.
    pub(crate) fn add(&self, project: ProjectId, spans: u64) {
        *self
            .counts
            .lock()
            .expect("listener counts poisoned")
            .entry(project)
            .or_default() += spans;
    }

    /// Whether the feed was dropped: the thread should end.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Committed spans per project heard from every node; its thread stops when it is dropped.
pub struct CommitListener {
    heard: Arc<Heard>,
}

impl CommitListener {
    /// A feed and what its listening thread adds to.
    pub(crate) fn new() -> (Self, Arc<Heard>) {
        let heard = Arc::new(Heard::default());
        (
            Self {
                heard: Arc::clone(&heard),
            },
            heard,
        )
    }
}

impl Drop for CommitListener {
    fn drop(&mut self) {
        self.heard.stop.store(true, Ordering::Relaxed);
    }
}

impl CommitFeed for CommitListener {
    fn committed_spans(&self, project: ProjectId) -> u64 {
        self.heard
            .counts
            .lock()
            .expect("listener counts poisoned")
            .get(&project)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! What every backend's listener must hear, written once.

    use super::*;
    use crate::conformance::{batch, span};
    use crate::{StoreWriter, prepare_spans};
    use std::time::{Duration, Instant};

    /// `listener` hears the commits `writer` makes to project 7, each once (re-sent spans are
    /// stored once and reported once), and nothing of a write that was refused; the default
    /// project hears nothing.
    pub(crate) fn hears_another_writers_commits_once(
        writer: &mut dyn StoreWriter,
        listener: &CommitListener,
    ) {
        let project = ProjectId(7);
        let spans = vec![span(1, 1, None, "a", 1, 2), span(1, 2, Some(1), "b", 1, 2)];
        writer
            .write(&[prepare_spans(batch("s", spans)).in_project(project)])
            .unwrap();
        let mut bad = prepare_spans(batch("s", vec![span(2, 1, None, "c", 1, 2)]));
        bad.traces[0].span_count = u64::MAX;
        assert!(writer.write(&[bad.in_project(project)]).is_err());
        let again = prepare_spans(batch("s", vec![span(1, 1, None, "a", 1, 2)]));
        writer.write(&[again.in_project(project)]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while listener.committed_spans(project) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(listener.committed_spans(project), 2);
        // A second later (several polls, re-reading what they read before): still counted once.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(listener.committed_spans(project), 2);
        assert_eq!(listener.committed_spans(ProjectId::DEFAULT), 0);
    }
}
