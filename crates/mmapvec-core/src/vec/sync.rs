//! Making a vec's writes durable (a [`SyncJob`] that owns what it syncs, so a flush can run on
//! another thread), and letting go of its mappings at close.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Code, Error, Result};
use crate::header::HEADER_FILE;
use crate::sys::{self, FileMap, Reservation};

use super::MmapVec;

impl MmapVec {
    /// A job that makes everything written so far durable: column data first, then the
    /// header that claims it. It owns what it touches, so it may run on another thread while
    /// this vec grows or closes.
    pub fn sync_job(&mut self) -> SyncJob {
        // Something may have replaced the SIGBUS handler since the vec was opened (Node does
        // while a program listens with `process.on('SIGBUS')`): every flush puts it back.
        sys::ensure_installed();
        if self.read_only || self.temp {
            return SyncJob::default();
        }
        let columns = self
            .columns
            .iter_mut()
            .map(|c| {
                let resized = c.synced_len != c.file_len;
                c.synced_len = c.file_len;
                SyncPart {
                    region: c.region.clone(),
                    len: c.mapped,
                    file: (resized || !sys::MAP_SYNC_REACHES_DISK).then(|| c.file.clone()),
                    handle: c.file.clone(),
                    file_len: c.file_len,
                    path: c.path.clone(),
                }
            })
            .collect();
        SyncJob {
            vec: self.path.clone(),
            columns,
            header: Some((self.header_map.clone(), self.path.join(HEADER_FILE))),
            header_file: (!sys::MAP_SYNC_REACHES_DISK).then(|| self.header_file.clone()),
            header_handle: Some(self.header_file.clone()),
            _busy: Some(self.jobs.clone()),
            rewrites: Some((self.rewrites.clone(), self.rewrites.load(Ordering::Acquire))),
        }
    }

    /// For a close once every view is revoked: puts private zero pages over the columns' file
    /// pages, so the files are let go at once. Otherwise they stay mapped until the last
    /// revoked ArrayBuffer's finalizer runs, which Node defers to a later turn of the event
    /// loop: a program that closed and deleted vecs in one synchronous stretch kept every one
    /// of them mapped, and the kernel wrote their dirty pages back, deleted files and all. A
    /// native reader still holding a pointer into a column (an in-flight `fs.write` from a
    /// view) reads zeros. Unmapping takes time in proportion to the pages the program touched
    /// (BENCHMARKS.md, "Targets: met and missed", pushMany), so it runs on a thread of its own, which owns the reservations meanwhile.
    /// Left to the finalizers while a flush job, which syncs through the mappings, is alive, and
    /// where no thread can be started.
    pub fn unmap_columns(&mut self) {
        if Arc::strong_count(&self.jobs) > 1 {
            return;
        }
        self.stop_prefaults();
        // A reservation nothing else holds (no view was ever made over it, as in overlay and
        // buffered modes) is unmapped when the vec drops, right after this. A pack's windows go
        // to the thread too: views hold the pack, not the window, whose drop would otherwise
        // put zero pages back on this thread.
        let ranges: Vec<(Arc<Reservation>, usize)> = self
            .columns
            .iter_mut()
            .filter(|c| Arc::strong_count(&c.region) > 1 || c.region.pack_of().is_some())
            .map(|c| (c.region.clone(), std::mem::take(&mut c.mapped)))
            .collect();
        if ranges.is_empty() {
            return;
        }
        // Without a thread (resource limits), the finalizers unmap them later, as before.
        let _ = std::thread::Builder::new()
            .name("mmapvec-unmap".into())
            .spawn(move || {
                for (region, mapped) in ranges {
                    // On a failure the file stays mapped until the finalizers drop the region.
                    let _ = region.zero_range(0, mapped);
                }
            });
    }

    /// Gives back the SIGBUS guards of every mapping (see `sys::Guard::release`): for `close`,
    /// once no view can touch them any more (detached, or given zero pages). Mappings views
    /// still hold may outlive the vec until V8 collects them, and a program that opens and
    /// closes vecs in a loop would otherwise run the guard table out.
    pub fn unguard(&self) {
        // The last publish reads the header's count: while a cut header is still guarded.
        self.publish_last();
        self.header_map.unguard();
        for c in &self.columns {
            c.region.unguard();
        }
    }

    /// Makes everything written so far durable, on this thread.
    pub fn flush(&mut self) -> Result<()> {
        self.sync_job().run()
    }
}

#[derive(Debug)]
struct SyncPart {
    region: Arc<Reservation>,
    len: usize,
    /// The file to sync as well (its size changed, or syncing the mapping is not enough).
    file: Option<Arc<File>>,
    /// The column's file, to tell whether it is still the one at `path`, and its size.
    handle: Arc<File>,
    file_len: u64,
    path: PathBuf,
}

/// See [`MmapVec::sync_job`].
#[derive(Debug, Default)]
pub struct SyncJob {
    vec: PathBuf,
    columns: Vec<SyncPart>,
    header: Option<(Arc<FileMap>, PathBuf)>,
    /// The header file, where syncing a mapping does not reach the disk by itself.
    header_file: Option<Arc<File>>,
    /// The header file, to tell whether it is still the one at its path.
    header_handle: Option<Arc<File>>,
    /// Tells the vec that a job is alive (see [`MmapVec::unmap_columns`]).
    _busy: Option<Arc<()>>,
    /// The vec's count of its own rewrites, and its value when the job was made.
    rewrites: Option<(Arc<AtomicU64>, u64)>,
}

impl SyncJob {
    /// Syncs the columns, then the header. A vec damaged under its mappings (see
    /// [`MmapVec::intact`]) is not synced: its header would make rows that were lost durable.
    pub fn run(&self) -> Result<()> {
        self.intact()?;
        self.still_in_place()?;
        for p in &self.columns {
            p.region
                .sync(p.len)
                .map_err(|e| Error::io(&e, &p.path, "flushing"))?;
            if let Some(f) = &p.file {
                f.sync_data().map_err(|e| Error::io(&e, &p.path, "flushing"))?;
            }
        }
        // A column may have faulted while it was synced.
        self.intact()?;
        if let Some((h, path)) = &self.header {
            h.sync().map_err(|e| Error::io(&e, path, "flushing"))?;
            if let Some(f) = &self.header_file {
                f.sync_data().map_err(|e| Error::io(&e, path, "flushing"))?;
            }
        }
        Ok(())
    }
}

impl SyncJob {
    /// Fails with EIO when another program replaced or deleted one of the vec's files under it
    /// (a rename over it, an rm): the mapping still holds the old file, which nothing can reach
    /// any more, so syncing it would report as durable rows that are lost at close.
    fn still_in_place(&self) -> Result<()> {
        let found = self.files_in_place();
        // The vec shrank, dropped a column or replaced its header since the job was made (read
        // after the files): they differ from what the job saw by its own doing.
        let rewritten = self
            .rewrites
            .as_ref()
            .is_some_and(|(n, at)| n.load(Ordering::Acquire) != *at);
        if rewritten {
            Ok(())
        } else {
            found
        }
    }

    fn files_in_place(&self) -> Result<()> {
        let header = self
            .header_handle
            .iter()
            .zip(self.header.iter())
            .map(|(f, (map, path))| (f, path, map.len() as u64));
        let files = self
            .columns
            .iter()
            .map(|p| (&p.handle, &p.path, p.file_len))
            .chain(header);
        for (file, path, expected) in files {
            // Cut short, but no page past the cut touched yet (nothing faulted): syncing would
            // make the lost rows' count durable.
            if file.metadata().is_ok_and(|m| m.len() < expected) {
                return Err(Error::damaged(&self.vec, path));
            }
            let same = match (sys::file_id(file), sys::path_id(path)) {
                (Ok(a), Ok(b)) => a == b,
                (Ok(_), Err(e)) if e.kind() == io::ErrorKind::NotFound => false,
                _ => true,
            };
            if !same {
                return Err(Error::new(
                    Code::Io,
                    format!(
                        "{}: {} was replaced or deleted by another program while the vec was open; what was written since went to the old file, which nothing can reach any more, so nothing was made durable. Close the vec and restore it from a backup",
                        self.vec.display(),
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn intact(&self) -> Result<()> {
        if let Some((_, path)) = self.header.as_ref().filter(|(h, _)| h.faulted()) {
            return Err(Error::damaged(&self.vec, path));
        }
        match self.columns.iter().find(|p| p.region.faulted()) {
            Some(p) => Err(Error::damaged(&self.vec, &p.path)),
            None => Ok(()),
        }
    }
}
