//! Copying rows between the mapped columns and memory of the caller's, and through the files:
//! buffered mode's reads and write-backs, `pushMany`'s bulk writes, read-ahead. The copies into
//! and out of the mappings are the vec's only `unsafe` code; each rests on the capacity
//! invariant: a column's `capacity * row_size` bytes from its offset are mapped to its file.

use crate::error::{Code, Error, Result};
use crate::sys;

use super::MmapVec;

impl MmapVec {
    /// Where column `i`'s rows start in memory, after checking that `bytes` of them fit its
    /// capacity (`doing` names the copy in the error).
    fn column_start(&self, i: usize, bytes: usize, doing: &str) -> Result<*mut u8> {
        let (region, offset, len) = self.column_region(i);
        if bytes > len {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: {doing} {bytes} bytes of a {len}-byte column",
                    self.path.display()
                ),
            ));
        }
        Ok(region.base().wrapping_add(offset))
    }

    /// Copies column `i`'s first `dst.len()` bytes (at most its capacity) out of the mapping.
    pub fn read_column(&self, i: usize, dst: &mut [u8]) -> Result<()> {
        let start = self.column_start(i, dst.len(), "reading")?;
        // SAFETY: the column's capacity bytes from `start` are mapped to its file (the capacity
        // invariant), `dst` is no larger (checked), and `dst` is not inside the mapping (it is
        // a `&mut` the caller owns, which no mapped range can be).
        unsafe { std::ptr::copy_nonoverlapping(start, dst.as_mut_ptr(), dst.len()) };
        // A page the copy touched may have faulted (the file was cut short): what was read is
        // not the file's.
        self.intact()
    }

    /// Copies `src` into column `i` from its first row on (buffered mode's write-back).
    pub fn write_column(&mut self, i: usize, src: &[u8]) -> Result<()> {
        self.writable()?;
        let base = self.column_start(i, src.len(), "writing")?;
        // Only pages whose bytes differ are written: an unchanged page stays clean, so a flush
        // writes what changed and the file's mtime moves only when its contents do.
        const CHUNK: usize = 4096;
        for (k, part) in src.chunks(CHUNK).enumerate() {
            // SAFETY: as in `read_column`: `[base, base + src.len())` is mapped (shared and
            // writable, the vec is not read-only) and does not overlap `src`; only the
            // column's own bytes are read, compared and written.
            unsafe {
                let dst = base.add(k * CHUNK);
                if std::slice::from_raw_parts(dst, part.len()) != part {
                    std::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
                }
            }
        }
        // As in `read_column`: a fault during the copy means the bytes did not reach the file.
        self.intact()
    }

    /// Writes whole rows of column `i`, from row `first_row` on, through the file (pwrite)
    /// instead of the mapping: the bulk path of `pushMany`. A first store into a page of a file
    /// mapping makes the kernel read the page in (zeroing it, for reserved blocks) before the
    /// store overwrites it, which bounds a copy into fresh pages well below what `pwrite` reaches
    /// (BENCHMARKS.md, "Targets: met and missed", pushMany); a write that covers whole pages
    /// skips that. The rows must lie within the capacity; the length is
    /// left alone, so on a failure (the bytes were partly written) no row changes.
    pub fn write_rows(&mut self, i: usize, first_row: u64, src: &[u8]) -> Result<()> {
        self.writable()?;
        let c = self
            .columns
            .get(i)
            .ok_or_else(|| Error::new(Code::Invalid, format!("{}: no column {i}", self.path.display())))?;
        let rows = (src.len() / c.row_size) as u64;
        if !src.len().is_multiple_of(c.row_size) || first_row.saturating_add(rows) > self.capacity {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: writing {} bytes at row {first_row} of a column of {}-byte rows and capacity {}",
                    self.path.display(),
                    src.len(),
                    c.row_size,
                    self.capacity
                ),
            ));
        }
        // A file cut short under the vec would be extended again by the write, with zeros where
        // its rows were.
        if c.cut_short() {
            return Err(Error::damaged(&self.path, &c.path));
        }
        let at = c.offset as u64 + first_row * c.row_size as u64;
        sys::write_at(&c.file, src, at).map_err(|e| Error::io(&e, &c.path, "writing rows"))
    }

    /// Asks the kernel to read rows `[start, end)` of every column ahead.
    pub fn prefetch(&self, start: u64, end: u64) -> Result<()> {
        self.intact()?;
        let end = end.min(self.capacity);
        for c in &self.columns {
            let at =
                |row: u64| (row.saturating_mul(c.row_size as u64) as usize).saturating_add(c.offset as usize);
            let (from, to) = (at(start), at(end));
            c.region
                .will_need(from, to)
                .map_err(|e| Error::io(&e, &c.path, "prefetching"))?;
        }
        Ok(())
    }
}
