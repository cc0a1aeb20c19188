//! Compression dictionaries for span chunks.
//!
//! A chunk holds the spans of one trace from one request: a dozen spans, a couple of KiB once
//! serialised. That is too little for zstd to learn what repeats across every chunk (attribute
//! keys, span names, resource attributes, scope names), so each chunk paid for them again. A
//! dictionary trained on the first chunks a process writes carries them: on the load
//! generator's spans a chunk shrinks from 134 to about 48 bytes a span, and compresses faster
//! (docs/PERFORMANCE.md, issue 46).
//!
//! A dictionary is known by a key derived from its bytes, so two processes that trained
//! different dictionaries never confuse them, and the same dictionary is the same everywhere.
//! The registry is process-wide: dictionaries are immutable, so every store a process opens can
//! share them. A store keeps each dictionary its chunks name (written in the same transaction
//! as the first chunk naming it), and loads a dictionary it has not seen yet when a chunk names
//! one (another process may have trained it after this one opened the store).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// Raw chunk bytes a process collects before it trains a dictionary: ≈ 3,000 spans of the load
/// generator. Less gave a worse dictionary; more only delays it (measured: 256 KiB → 49 B a
/// span, 1 MiB → 47, 4 MiB → 47).
const TRAIN_AFTER_BYTES: usize = 1 << 20;
/// Chunks larger than this are not used as samples: one huge trace would dominate.
const MAX_SAMPLE_BYTES: usize = 64 << 10;
/// The dictionary's size: 32 KiB came within 1 % of 64 KiB and 110 KiB.
const DICTIONARY_BYTES: usize = 32 << 10;

/// A trained dictionary, ready for both directions. Registered dictionaries live as long as the
/// process (a few per process: the one it trained and those of the stores it opened).
pub struct Dictionary {
    pub key: u64,
    pub bytes: Vec<u8>,
    pub(super) encoder: EncoderDictionary<'static>,
    pub(super) decoder: DecoderDictionary<'static>,
}

fn registry() -> &'static RwLock<HashMap<u64, &'static Dictionary>> {
    static REGISTRY: OnceLock<RwLock<HashMap<u64, &'static Dictionary>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The dictionary new chunks are compressed with: the first one this process trained or found
/// in a store it opened.
static FOR_ENCODING: OnceLock<&'static Dictionary> = OnceLock::new();

/// The key of `bytes`: the first 8 bytes of their BLAKE3 hash.
pub fn key_of(bytes: &[u8]) -> u64 {
    let hash = blake3::hash(bytes);
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// The registered dictionary with `key`, if any.
pub fn find(key: u64) -> Option<&'static Dictionary> {
    registry().read().expect("registry lock").get(&key).copied()
}

/// Registers `bytes` as a dictionary (once: the same bytes return the same entry); `None` when
/// zstd cannot use them.
pub fn register(bytes: Vec<u8>) -> Option<&'static Dictionary> {
    let key = key_of(&bytes);
    if let Some(known) = find(key) {
        return Some(known);
    }
    let encoder = EncoderDictionary::try_copy(&bytes, super::ZSTD_LEVEL).ok()?;
    let decoder = DecoderDictionary::try_copy(&bytes).ok()?;
    let mut registry = registry().write().expect("registry lock");
    let entry = registry.entry(key).or_insert_with(|| {
        Box::leak(Box::new(Dictionary {
            key,
            bytes,
            encoder,
            decoder,
        }))
    });
    Some(*entry)
}

/// Registers the dictionary a store returned for `key` (`None`: the store does not hold it), for
/// a chunk naming it: an error names the dictionary when the store cannot supply it.
pub fn register_from_store(key: u64, bytes: Option<Vec<u8>>) -> crate::Result<()> {
    let corrupt = |what: String| crate::StoreError::Corrupt(what);
    let bytes = bytes.ok_or_else(|| {
        corrupt(format!(
            "a chunk names compression dictionary {key:016x}, which the store does not hold"
        ))
    })?;
    register(bytes).ok_or_else(|| {
        corrupt(format!(
            "the store's compression dictionary {key:016x} is not one zstd can use"
        ))
    })?;
    Ok(())
}

/// Compress new chunks with `dictionary` unless this process already has one.
pub fn adopt(dictionary: &'static Dictionary) {
    let _ = FOR_ENCODING.set(dictionary);
}

/// The dictionary to compress a new chunk with, if this process has one yet.
pub fn for_encoding() -> Option<&'static Dictionary> {
    FOR_ENCODING.get().copied()
}

/// Samples collected for training, until [`TRAIN_AFTER_BYTES`].
struct Samples {
    chunks: Vec<Vec<u8>>,
    bytes: usize,
}

static TRAINING_STARTED: AtomicBool = AtomicBool::new(false);

/// Offers a chunk's serialised bytes as a training sample. Once enough are collected a
/// dictionary is trained on another thread (≈ 75 ms) and adopted; chunks written meanwhile
/// are compressed without one. Costs a lock only until training starts.
pub fn offer_sample(raw: &[u8]) {
    if TRAINING_STARTED.load(Ordering::Relaxed) || FOR_ENCODING.get().is_some() {
        return;
    }
    if raw.len() > MAX_SAMPLE_BYTES {
        return;
    }
    static SAMPLES: Mutex<Samples> = Mutex::new(Samples {
        chunks: Vec::new(),
        bytes: 0,
    });
    let mut samples = SAMPLES.lock().expect("samples lock");
    if TRAINING_STARTED.load(Ordering::Relaxed) {
        return;
    }
    samples.chunks.push(raw.to_vec());
    samples.bytes += raw.len();
    if samples.bytes < TRAIN_AFTER_BYTES {
        return;
    }
    TRAINING_STARTED.store(true, Ordering::Relaxed);
    let chunks = std::mem::take(&mut samples.chunks);
    samples.bytes = 0;
    drop(samples);
    let spawned = std::thread::Builder::new()
        .name("devtrace-dictionary".into())
        .spawn(move || train(&chunks));
    if let Err(error) = spawned {
        tracing::debug!(%error, "no thread to train a chunk dictionary; chunks stay without one");
    }
}

/// Trains a dictionary on `samples` and adopts it. A failure (samples too alike or too few) only
/// leaves chunks without a dictionary.
pub fn train(samples: &[Vec<u8>]) -> Option<&'static Dictionary> {
    match zstd::dict::from_samples(samples, DICTIONARY_BYTES) {
        Ok(bytes) => {
            let dictionary = register(bytes)?;
            adopt(dictionary);
            tracing::debug!(
                key = dictionary.key,
                bytes = dictionary.bytes.len(),
                samples = samples.len(),
                "trained a chunk dictionary"
            );
            Some(dictionary)
        }
        Err(error) => {
            tracing::debug!(%error, "no chunk dictionary: training failed");
            None
        }
    }
}
