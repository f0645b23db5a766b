//! Platform code: address-space reservations, mappings over them, syncing and advice.
//! Each platform has its own module, chosen by `cfg` (memmap2's pattern); what does not depend
//! on the platform (the header's mapping through memmap2, rounding, the mapping mode) is here.
//!
//! Both modules provide the same items: `page_size`, `map_granularity`, `open_file`,
//! `Reservation` (`new`, `base`, `len`, `map_file`, `zero_range`, `sync`, `populate_write`,
//! `will_need`), `allocate`, `process_alive`, `sync_dir`, `file_id`, `path_id`,
//! `is_not_regular`, and overlay mode's `OVERLAY`, `map_file_over` and `restore_anonymous`
//! (Unix only; errors on Windows).

use std::fs::File;
use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(any(windows, test))]
mod placeholders;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!(
    "mmapvec-core maps column files into address-space reservations; only Unix (Linux, macOS) \
     and Windows are implemented"
);

/// How a file is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapMode {
    /// Writes reach the file (read-write vecs).
    Shared,
    /// Writes stay in this process's private copy and never reach the file (read-only vecs:
    /// a stray write through a view must not crash the process, nor change the file).
    Private,
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "size does not fit the address space")
}

/// Rounds `n` up to a multiple of `to` (a power of two), or None on overflow.
pub fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|v| v / to * to)
}

/// A whole file mapped at an address the system chooses (the header).
#[derive(Debug)]
pub struct FileMap {
    inner: memmap2::MmapRaw,
}

impl FileMap {
    pub fn new(file: &File, len: usize, mode: MapMode) -> io::Result<FileMap> {
        let mut opts = memmap2::MmapOptions::new();
        opts.len(len);
        let inner = match mode {
            MapMode::Shared => opts.map_raw(file)?,
            // SAFETY: a private (copy-on-write) mapping; the header's size was checked against
            // the file just before, under the lock that keeps writers out.
            MapMode::Private => memmap2::MmapRaw::from(unsafe { opts.map_copy(file)? }),
        };
        Ok(FileMap { inner })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.inner.as_mut_ptr()
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    pub fn sync(&self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Reads the f64 at `off`, which JavaScript may write at any time between our calls.
    pub fn read_f64(&self, off: usize) -> f64 {
        assert!(off.is_multiple_of(8) && off + 8 <= self.len());
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `self`. A
        // volatile read because the bytes change outside Rust's view.
        unsafe { std::ptr::read_volatile(self.ptr().add(off).cast::<f64>()) }
    }

    /// Writes the f64 at `off`.
    pub fn write_f64(&self, off: usize, v: f64) {
        assert!(off.is_multiple_of(8) && off + 8 <= self.len());
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `self`.
        unsafe { std::ptr::write_volatile(self.ptr().add(off).cast::<f64>(), v) }
    }
}
