//! The embedded store's copy of the chunk dictionaries its chunks name
//! (see [`crate::chunk::dictionary`]): kept with the first chunk that names one, loaded when a
//! chunk names one this process has not registered.

use crate::chunk::{self, dictionary};
use crate::{Result, StoreError};
use devtrace_model::SpanBatch;
use rusqlite::{Connection, OptionalExtension, params};

/// Stores the dictionary `data` (a chunk about to be written) names, unless the store holds it.
/// `written` remembers the keys this connection wrote or found, so each costs one statement
/// per writer (the caller forgets them when a transaction fails).
pub(crate) fn keep_for(
    conn: &Connection,
    data: &[u8],
    written: &mut std::collections::HashSet<u64>,
) -> Result<()> {
    let Some(key) = chunk::dictionary_key(data) else {
        return Ok(());
    };
    if written.contains(&key) {
        return Ok(());
    }
    let dictionary = dictionary::find(key).ok_or_else(|| {
        StoreError::Corrupt(format!("chunk dictionary {key:016x} is not registered"))
    })?;
    conn.prepare_cached("INSERT OR IGNORE INTO chunk_dictionaries (key, data) VALUES (?1, ?2)")?
        .execute(params![key as i64, dictionary.bytes])?;
    written.insert(key);
    Ok(())
}

/// Decodes a stored span chunk, first loading the dictionary it names if this process has not
/// registered it (another process trained it after this one opened the store).
pub(crate) fn decode_stored_spans(conn: &Connection, data: &[u8]) -> Result<SpanBatch> {
    if let Some(key) = chunk::missing_dictionary(data) {
        load(conn, key)?;
    }
    chunk::decode_spans(data)
}

/// Registers the store's dictionary `key`; an error names it when the store does not hold it.
fn load(conn: &Connection, key: u64) -> Result<()> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM chunk_dictionaries WHERE key = ?1")?
        .query_row(params![key as i64], |row| row.get(0))
        .optional()?;
    dictionary::register_from_store(key, bytes)
}

/// Compress this process's new chunks with the store's newest dictionary (unless the process
/// has one): a server restarted on a store does not train again, and a short `devtrace run`
/// gets the store's dictionary without ever collecting samples.
pub(crate) fn adopt_newest(conn: &Connection) -> Result<()> {
    let newest: Option<Vec<u8>> = conn
        .query_row(
            "SELECT data FROM chunk_dictionaries ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(dictionary) = newest.and_then(dictionary::register) {
        dictionary::adopt(dictionary);
    }
    Ok(())
}
