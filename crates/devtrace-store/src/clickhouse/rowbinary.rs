//! ClickHouse's `RowBinary` format: what inserts send and selects read.
//!
//! Numbers little-endian, strings and arrays prefixed by a LEB128 length, `FixedString(N)` as
//! its N bytes. Only the types devtrace's tables use.

use crate::{Result, StoreError};

/// Rows being encoded for an `INSERT … FORMAT RowBinary`.
#[derive(Default)]
pub(crate) struct Rows {
    pub(crate) bytes: Vec<u8>,
    pub(crate) count: usize,
}

impl Rows {
    pub(crate) fn row(&mut self) -> &mut Self {
        self.count += 1;
        self
    }

    fn length(&mut self, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.bytes.push(byte);
                return;
            }
            self.bytes.push(byte | 0x80);
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.length(v.len());
        self.bytes.extend_from_slice(v);
        self
    }

    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A `FixedString(N)`: exactly its bytes.
    pub(crate) fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }

    pub(crate) fn strings<'a>(&mut self, v: impl ExactSizeIterator<Item = &'a str>) -> &mut Self {
        self.length(v.len());
        for s in v {
            self.str(s);
        }
        self
    }

    pub(crate) fn u64s(&mut self, v: impl ExactSizeIterator<Item = u64>) -> &mut Self {
        self.length(v.len());
        for n in v {
            self.u64(n);
        }
        self
    }

    pub(crate) fn u8s(&mut self, v: impl ExactSizeIterator<Item = u8>) -> &mut Self {
        self.length(v.len());
        self.bytes.extend(v);
        self
    }

    /// A `Map(String, String)` (or `Map(LowCardinality(String), String)`, whose rows have the
    /// same bytes).
    pub(crate) fn map(&mut self, v: &[(String, String)]) -> &mut Self {
        self.length(v.len());
        for (k, value) in v {
            self.str(k);
            self.str(value);
        }
        self
    }
}

/// A `RowBinary` result being read, column by column.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub(crate) fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "ClickHouse answer ends early (RowBinary, at byte {})",
                self.at
            ))
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn length(&mut self) -> Result<usize> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(StoreError::Corrupt("ClickHouse answer: bad length".into()))
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.length()?;
        self.take(n)
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| StoreError::Corrupt("ClickHouse answer: a string is not UTF-8".into()))
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// `Nullable(T)`: a null marker byte, then the value when it is not null.
    pub(crate) fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<Option<T>> {
        if self.u8()? == 1 {
            Ok(None)
        } else {
            read(self).map(Some)
        }
    }

    pub(crate) fn array<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.length()?;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_written() {
        let mut rows = Rows::default();
        rows.row()
            .u64(7)
            .str(&"é".repeat(100))
            .fixed(&[1, 2])
            .u64s([3u64, 4].into_iter())
            .f64(0.5);
        let mut r = Reader::new(&rows.bytes);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.string().unwrap(), "é".repeat(100));
        assert_eq!(r.fixed::<2>().unwrap(), [1, 2]);
        assert_eq!(r.array(Reader::u64).unwrap(), [3, 4]);
        assert_eq!(r.f64().unwrap(), 0.5);
        assert!(r.done());
        assert!(
            r.u8().is_err(),
            "reading past the end is an error, not a panic"
        );
    }
}
