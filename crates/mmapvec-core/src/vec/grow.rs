//! Growing and shrinking a vec: its column files are extended (with reserved blocks) or cut,
//! and their mappings grow in place inside their reservations, or move to larger ones. A sparse
//! copy's missing blocks are reserved here too, at open and at each growth.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::dir;
use crate::error::{Code, Error, Result};
use crate::schema::Column;
use crate::sys::{self, MapMode, Reservation};

use super::{mapped_bytes, reservation_for, Growth, MmapVec, OpenOptions};

/// The smallest capacity growth produces, in rows.
const MIN_GROWTH_ROWS: u64 = 1024;

/// Reserves the disk blocks of `file`'s first `len` bytes (no more than it has) when fewer
/// blocks than that are allocated, so that a store into them on a full disk is ENOSPC now instead of SIGBUS later.
/// The file's contents and times stay as they were (only blocks are added). A file system that
/// cannot reserve blocks leaves the file as it is.
fn reserve_blocks(file: &File, path: &Path, len: u64) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(&e, path, "reading its size"))?;
    let len = len.min(meta.len());
    if sys::allocated_bytes(file).is_ok_and(|n| n >= len) {
        return Ok(());
    }
    sys::allocate(file, len).map_err(|e| {
        let mut err = Error::io(&e, path, "reserving its disk blocks");
        if err.code == Code::NoSpace {
            err.message = format!(
                "{}: the file is sparse (a copy made with cp --sparse or rsync -S, or a restored backup) and the disk has no room for the {len} bytes its rows need; free space on the disk, or copy the vec without sparse files",
                path.display()
            );
        }
        err
    })?;
    // Reserving blocks is not a change of contents: the modification time stays.
    if let (Ok(accessed), Ok(modified)) = (meta.accessed(), meta.modified()) {
        let _ = file.set_times(fs::FileTimes::new().set_accessed(accessed).set_modified(modified));
    }
    Ok(())
}

/// Cuts the capacity a vec opens with to its rows when its files are a sparse copy, and
/// reserves the rows' blocks; returns the capacity to open with.
///
/// A sparse copy (cp --sparse, rsync -S, a restored backup) has holes where the files
/// had zeros, past the rows and often among them: fewer blocks than what would be mapped
/// (mmapvec's own files have all of theirs). The rows' blocks are reserved (a store
/// there must not fault on a full disk) and the capacity is cut to the rows: the next
/// growth reserves the rest, failing with ENOSPC if it must, instead of this open
/// reserving all the space the files claim.
pub(super) fn reserve_sparse_rows(
    files: &[(File, PathBuf, u64)],
    columns: &[Column],
    capacity: u64,
    length: u64,
) -> Result<u64> {
    let holes = files.iter().zip(columns).any(|((file, _, size), col)| {
        let mapped = (mapped_bytes(capacity, col.row_size(), col.offset) as u64).min(*size);
        sys::allocated_bytes(file).is_ok_and(|n| n < mapped)
    });
    if !holes {
        return Ok(capacity);
    }
    let capacity = capacity.min(length);
    for ((file, fpath, _), col) in files.iter().zip(columns) {
        reserve_blocks(
            file,
            fpath,
            mapped_bytes(capacity, col.row_size(), col.offset) as u64,
        )?;
    }
    Ok(capacity)
}

/// Windows of one pack for columns of `sizes` mapped bytes, when `opts` asks for packing and
/// the vec is large enough for it to matter; else none (each column gets a reservation). A
/// pack that cannot be made (no address space, or Windows) is no error: the columns are then
/// reserved one by one.
pub(super) fn pack_windows(sizes: &[usize], opts: &OpenOptions) -> Vec<Reservation> {
    let total = sizes.iter().fold(0usize, |a, &b| a.saturating_add(b));
    if sizes.len() < 2 || opts.pack_min_bytes.is_none_or(|min| total < min) {
        return Vec::new();
    }
    match sys::PackLayout::new(sizes) {
        Some(layout) if layout.len as u64 <= opts.max_view_bytes => {
            Reservation::pack(&layout).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

impl MmapVec {
    /// Grows the capacity to at least `min_capacity` rows: geometrically (at least doubling)
    /// when `geometric`, else exactly (rounded up to pages). Files are extended with reserved
    /// blocks; mappings grow in place unless a reservation is too small (see [`Growth`]).
    /// On failure the vec keeps its old capacity and every row.
    pub fn grow(&mut self, min_capacity: u64, geometric: bool) -> Result<Growth> {
        self.grow_with(min_capacity, geometric, geometric)
    }

    /// Grows geometrically, as `grow(min_capacity, true)`, but leaves the new pages alone: for
    /// rows that [`write_rows`](Self::write_rows) will write through the file, where faulting
    /// them in first would only zero pages that are about to be overwritten.
    pub fn grow_for_writes(&mut self, min_capacity: u64) -> Result<Growth> {
        self.grow_with(min_capacity, true, false)
    }

    fn grow_with(&mut self, min_capacity: u64, geometric: bool, prefault: bool) -> Result<Growth> {
        self.writable()?;
        // A file another program cut short would be extended again with zeros where its rows
        // were, as if nothing had happened.
        if let Some(c) = self.columns.iter().find(|c| c.cut_short()) {
            return Err(Error::damaged(&self.path, &c.path));
        }
        if min_capacity <= self.capacity {
            return Ok(Growth::default());
        }
        let viewable = self.viewable_rows();
        if min_capacity > viewable {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: {min_capacity} rows would make a column larger than this runtime can show as one view ({} bytes); {}",
                    self.path.display(),
                    self.max_view_bytes,
                    self.view_limit_fix
                ),
            ));
        }
        let target = if geometric {
            min_capacity
                .max(self.capacity.saturating_mul(2))
                .max(MIN_GROWTH_ROWS)
                .min(viewable)
        } else {
            min_capacity
        };
        let mut sizes = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            sizes.push(dir::file_bytes(target, c.row_size, c.offset)?);
        }
        // Phase 1: extend every file. If one fails, give the others back their old size.
        for (i, c) in self.columns.iter().enumerate() {
            // A file already long enough (a sparse copy, whose capacity open cut to the rows, or
            // a growth a crash interrupted) may have holes where the new pages go: their blocks
            // are reserved all the same.
            let holes =
                sizes[i] > c.mapped as u64 && sys::allocated_bytes(&c.file).is_ok_and(|n| n < sizes[i]);
            if sizes[i] <= c.file_len && !holes {
                continue;
            }
            if let Err(e) = sys::allocate(&c.file, sizes[i]) {
                for c in &self.columns[..=i] {
                    if c.file.metadata().map(|m| m.len() > c.file_len).unwrap_or(false) {
                        let _ = c.file.set_len(c.file_len);
                    }
                }
                return Err(Error::io(&e, &c.path, "growing the column file"));
            }
        }
        // Phase 2: map the new pages. A column whose reservation is too small moves.
        for (i, c) in self.columns.iter_mut().enumerate() {
            c.file_len = sizes[i].max(c.file_len);
        }
        // No more than the target: a file already longer than it (a sparse copy, or a growth a
        // crash interrupted) had only the target's blocks reserved above.
        let reserved = self
            .columns
            .iter()
            .zip(&sizes)
            .map(|(c, &n)| dir::rows_in(n, c.offset, c.row_size))
            .min()
            .unwrap_or(target);
        let capacity = self.fit_capacity().min(reserved);
        let old_mapped: Vec<usize> = self.columns.iter().map(|c| c.mapped).collect();
        let growth = self.map_capacity(capacity, MapMode::Shared)?;
        if prefault {
            self.prefault_from(&old_mapped);
        }
        self.capacity = capacity;
        Ok(growth)
    }

    /// Maps each column's file up to `capacity` rows: in place where its reservation has room,
    /// else into a new reservation (the column moves; see [`Growth`]). The files hold them.
    fn map_capacity(&mut self, capacity: u64, mode: MapMode) -> Result<Growth> {
        let mut growth = Growth::default();
        // A pack has no room to grow in: every column of it moves, even one that needs no new
        // pages, so that no view ever covers a window whose column has left it. The columns
        // that move are all mapped anew before any of them leaves its old memory: a window
        // goes back to zero pages once its column leaves it, and a failure halfway must leave
        // the views over the pack reaching the files.
        let mut moves = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let new_mapped = mapped_bytes(capacity, c.row_size, c.offset).max(c.mapped);
            if new_mapped > c.region.len() || c.region.pack_of().is_some() {
                let region = reservation_for(new_mapped, self.reservation)
                    .map_err(|e| Error::io(&e, &c.path, "reserving address space"))?;
                region
                    .map_file(&c.file, 0, new_mapped, mode)
                    .map_err(|e| Error::io(&e, &c.path, "mapping the grown column"))?;
                moves.push((i, region, new_mapped));
            }
        }
        for (i, region, new_mapped) in moves {
            let c = &mut self.columns[i];
            // Its views are detached (or get zero pages) as it leaves: nothing touches it again.
            c.region.unguard();
            c.region = Arc::new(region);
            c.mapped = new_mapped;
            growth.moved.push(i);
        }
        for c in &mut self.columns {
            let new_mapped = mapped_bytes(capacity, c.row_size, c.offset);
            if new_mapped <= c.mapped {
                continue;
            }
            let unit = sys::map_granularity();
            let from = c.mapped / unit * unit;
            c.region
                .map_file(&c.file, from, new_mapped, mode)
                .map_err(|e| Error::io(&e, &c.path, "mapping the grown column"))?;
            c.mapped = new_mapped;
        }
        Ok(growth)
    }

    /// A reader's growth: maps what the writer's files now hold, at least `rows` rows when they
    /// hold that many (a reader's capacity follows the files; it never extends them).
    pub(super) fn follow_files(&mut self, rows: u64) -> Result<Growth> {
        if rows <= self.capacity {
            return Ok(Growth::default());
        }
        for c in &mut self.columns {
            let len = c
                .file
                .metadata()
                .map_err(|e| Error::io(&e, &c.path, "following the writer's growth"))?
                .len();
            c.file_len = c.file_len.max(len);
        }
        let capacity = self.fit_capacity().max(self.capacity);
        let growth = self.map_capacity(capacity, MapMode::Private)?;
        self.capacity = capacity;
        Ok(growth)
    }

    /// Shrinks every column file to the pages the current rows need. Whoever handed out
    /// pointers into the columns (views) must revoke them first: the memory past the new end
    /// becomes private zero pages.
    ///
    /// While readers are open beside the writer, nothing is cut (their mappings cover the
    /// files' pages): the capacity stays, and a later shrink, with no reader, gives it back.
    pub fn shrink_to_fit(&mut self) -> Result<()> {
        self.writable()?;
        let live = self.live.clone();
        match live {
            Some(l) => l.without_readers(|| self.cut_to_fit()).unwrap_or(Ok(())),
            None => self.cut_to_fit(),
        }
    }

    fn cut_to_fit(&mut self) -> Result<()> {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        self.stop_prefaults();
        let len = self.len();
        let mut failed = None;
        for c in &mut self.columns {
            let new_len = match dir::file_bytes(len, c.row_size, c.offset) {
                Ok(n) => n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if new_len >= c.file_len {
                continue;
            }
            let keep = new_len as usize;
            let done = c
                .region
                .zero_range(keep, c.mapped)
                .map_err(|e| Error::io(&e, &c.path, "unmapping the freed pages"))
                .and_then(|()| {
                    c.file
                        .set_len(new_len)
                        .map_err(|e| Error::io(&e, &c.path, "shrinking the column file"))
                });
            match done {
                Ok(()) => {
                    c.mapped = keep;
                    c.file_len = new_len;
                }
                Err(e) => {
                    // The file keeps its size (Windows, for one, refuses to truncate a file that
                    // a mapping still covers): map its pages back, so the capacity stays backed
                    // by the file. Failing that, only what is still mapped counts as capacity.
                    if c.region
                        .map_file(&c.file, keep, c.mapped, MapMode::Shared)
                        .is_err()
                    {
                        c.mapped = keep;
                        c.file_len = new_len;
                    }
                    failed = Some(e);
                    break;
                }
            }
        }
        // Also after a failure: columns shrunk before it must not count their freed rows.
        self.capacity = self.fit_capacity().max(len);
        failed.map_or(Ok(()), Err)
    }

    /// The rows every column file has room for and every view can show.
    fn fit_capacity(&self) -> u64 {
        self.columns
            .iter()
            .map(|c| dir::rows_in(c.file_len, c.offset, c.row_size))
            .min()
            .unwrap_or(0)
            .min(self.viewable_rows())
    }

    /// The most rows a view of every column can show.
    fn viewable_rows(&self) -> u64 {
        self.columns
            .iter()
            .map(|c| self.max_view_bytes / c.row_size as u64)
            .min()
            .unwrap_or(0)
    }
}
