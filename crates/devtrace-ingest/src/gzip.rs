//! Bounded gzip decompression: a small compressed body must not expand without limit.

use crate::DecodeError;
use std::io::Read;

/// Decompresses `body`, failing with [`DecodeError::TooLarge`] past `limit` bytes of output.
pub fn gunzip_bounded(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn round_trips_within_the_limit() {
        assert_eq!(gunzip_bounded(&gzip(b"hello"), 5).unwrap(), b"hello");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            gunzip_bounded(&bomb, 1 << 20),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            gunzip_bounded(b"not gzip", 100),
            Err(DecodeError::Gzip(_))
        ));
    }
}
