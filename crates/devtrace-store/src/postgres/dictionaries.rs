//! The PostgreSQL store's copy of the chunk dictionaries its chunks name
//! (see [`crate::chunk::dictionary`]), shared by every project and writer: kept in the
//! transaction that writes the first chunk naming one, loaded when a chunk names one this
//! process has not registered (another server trained it).

use crate::chunk::{self, dictionary};
use crate::{Result, StoreError};
use devtrace_model::SpanBatch;
use postgres::GenericClient;
use std::collections::BTreeSet;

/// Stores every dictionary the chunks `data` name that the store does not hold yet: one
/// statement per distinct dictionary (a transaction's chunks almost always name one).
pub(super) fn keep_for<'a>(
    client: &mut impl GenericClient,
    data: impl IntoIterator<Item = &'a [u8]>,
) -> Result<()> {
    let keys: BTreeSet<u64> = data.into_iter().filter_map(chunk::dictionary_key).collect();
    for key in keys {
        let dictionary = dictionary::find(key).ok_or_else(|| {
            StoreError::Corrupt(format!("chunk dictionary {key:016x} is not registered"))
        })?;
        client.execute(
            "INSERT INTO chunk_dictionaries (key, data) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&(key as i64), &dictionary.bytes],
        )?;
    }
    Ok(())
}

/// Decodes a stored span chunk, first loading the dictionary it names if this process has not
/// registered it.
pub(super) fn decode_stored_spans(
    client: &mut impl GenericClient,
    data: &[u8],
) -> Result<SpanBatch> {
    if let Some(key) = chunk::missing_dictionary(data) {
        let row = client.query_opt(
            "SELECT data FROM chunk_dictionaries WHERE key = $1",
            &[&(key as i64)],
        )?;
        dictionary::register_from_store(key, row.map(|r| r.get(0)))?;
    }
    chunk::decode_spans(data)
}

/// Compress this process's new chunks with the store's newest dictionary, unless it has one.
pub(super) fn adopt_newest(client: &mut impl GenericClient) -> Result<()> {
    let newest = client.query_opt(
        "SELECT data FROM chunk_dictionaries ORDER BY id DESC LIMIT 1",
        &[],
    )?;
    if let Some(dictionary) = newest.and_then(|row| dictionary::register(row.get(0))) {
        dictionary::adopt(dictionary);
    }
    Ok(())
}
