//! A bounds-checked reader over a byte slice: every read past the end is a
//! [`Problem::Truncated`], never a panic.

use super::Problem;

pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Offset of the next byte to read, from the start of the slice.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes, or `Truncated` when fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end));
        let Some(bytes) = bytes else {
            let plural = if n == 1 { "" } else { "s" };
            return Err(Problem::Truncated(format!(
                "needs {n} byte{plural} at offset {}, but the file ends at {}",
                self.pos,
                self.data.len()
            )));
        };
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Problem> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    pub(crate) fn u16_le(&mut self) -> Result<u16, Problem> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, Problem> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn i32_le(&mut self) -> Result<i32, Problem> {
        self.array().map(i32::from_le_bytes)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, Problem> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn i64_le(&mut self) -> Result<i64, Problem> {
        self.array().map(i64::from_le_bytes)
    }

    /// Pickle stores floats big-endian, unlike its integers.
    pub(crate) fn f64_be(&mut self) -> Result<f64, Problem> {
        self.array().map(f64::from_be_bytes)
    }

    /// The bytes up to the next `\n`, which is consumed but not returned.
    pub(crate) fn line(&mut self) -> Result<&'a [u8], Problem> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Problem::Truncated(format!(
                "a text line starting at offset {} has no end",
                self.pos
            )));
        };
        let line = self.take(len)?;
        self.take(1)?;
        Ok(line)
    }
}
