//! The native Python recorder's data path, without Python: the shared-memory file the recorder
//! writes calls into ([`ring`]), the names sent once per code object beside them ([`names`]),
//! the builder that turns a thread's calls back into spans ([`builder`]), and the flight
//! recorder's value summaries kept in the file ([`values`]), and which files left by recordings
//! that never stopped nothing needs ([`leftovers`]).
//!
//! Owns: the on-disk (shared-memory) format, version 1, documented in [`ring`]; writing records
//! from the thread that makes them (one writer per stream, no lock, no allocation); reading
//! them from another thread of the same process while they are written, or from another
//! process after the writer died; and the span builder shared by the live recorder, the flight
//! recorder's dump and crash recovery.
//!
//! Must not: know Python (the extension module `devtrace-pyrecorder` does), OpenTelemetry's
//! wire formats, or the store. Its output is plain values the callers turn into spans.

pub mod beam;
pub mod builder;
pub mod clock;
pub mod leftovers;
pub mod links;
pub mod names;
pub mod ring;
pub mod values;

pub use builder::{Builder, BuilderOptions, CallAggregate, OutSpan, SdkSpanCalls};
pub use links::OutLink;
pub use names::{CodeInfo, Names};
pub use ring::{
    Event, EventKind, Layout, LinkKind, RecorderFile, RingError, StreamEvents, ThreadWriter,
    WaitStats,
};
