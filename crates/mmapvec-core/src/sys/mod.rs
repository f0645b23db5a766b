//! Platform code: address-space reservations, mappings over them, syncing and advice.
//! Each platform has its own module, chosen by `cfg` (memmap2's pattern); what does not depend
//! on the platform (the header's mapping through memmap2, rounding, the mapping mode) is here.
//!
//! Both modules provide the same items: `page_size`, `map_granularity`, `open_file`,
//! `Reservation` (`new`, `pack`, `pack_of`, `base`, `len`, `map_file`, `zero_range`, `sync`,
//! `populate_write`, `will_need`), `Pack` (`base`, `len`; Unix only: `Reservation::pack` fails
//! on Windows), `allocate`, `process_alive`, `sync_dir`, `file_id`, `path_id`,
//! `is_not_regular`, `try_lock` and `unlock` (the advisory locks), `futex_wait` and `futex_wake` (Linux's futex; a short sleep and nothing
//! elsewhere), and the Unix-only ones, which error on Windows: `zero_pages` and overlay
//! mode's `OVERLAY`, `map_file_over` and `restore_anonymous`.

use std::fs::File;
use std::io;
use std::sync::atomic::AtomicU32;

#[cfg(unix)]
mod fault;
#[cfg(unix)]
pub use fault::{ensure_installed, Guard};
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

/// Where packed windows start: whole 2 MiB units, as the kernel maps the page cache's large
/// folios best at 2 MiB-aligned addresses (see [`Reservation::new`]'s skew).
pub const PACK_ALIGN: usize = 2 << 20;

/// Address bits 12-27 repeat every 256 MiB: rows at one index of two windows whose starts agree
/// modulo this would agree in the bits AMD's L1 way predictor hashes.
const PREDICTOR_SPAN: usize = 256 << 20;

/// Where the windows of a pack go: `(offset, len)` of each, from the first window's start, and
/// the bytes from that start to the last window's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackLayout {
    pub windows: Vec<(usize, usize)>,
    pub len: usize,
}

impl PackLayout {
    /// Lays windows of `lens` bytes (whole pages) out back to back, each at a multiple of
    /// [`PACK_ALIGN`], and moved on by further units while its start agrees modulo 256 MiB with
    /// an earlier window's (a loop over two columns would otherwise run slower; see
    /// [`Reservation::new`]). None when the total does not fit the address space.
    pub fn new(lens: &[usize]) -> Option<PackLayout> {
        let mut windows: Vec<(usize, usize)> = Vec::with_capacity(lens.len());
        let mut end = 0usize;
        for &len in lens {
            let mut at = round_up(end, PACK_ALIGN)?;
            for _ in 0..PREDICTOR_SPAN / PACK_ALIGN {
                if windows
                    .iter()
                    .all(|&(o, _)| !(at - o).is_multiple_of(PREDICTOR_SPAN))
                {
                    break;
                }
                at = at.checked_add(PACK_ALIGN)?;
            }
            windows.push((at, len));
            end = at.checked_add(len)?;
        }
        Some(PackLayout { windows, len: end })
    }
}

/// A whole file mapped at an address the system chooses (the header).
#[derive(Debug)]
pub struct FileMap {
    inner: memmap2::MmapRaw,
    /// The SIGBUS guard of the mapping (taken before the mapping goes).
    guard: Option<Guard>,
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
        let guard = Some(Guard::new(inner.as_mut_ptr(), inner.len()));
        Ok(FileMap { inner, guard })
    }

    /// Whether a page of the file faulted (the file was cut short under the mapping): the
    /// mapping then holds zero pages from that page on.
    pub fn faulted(&self) -> bool {
        self.guard.as_ref().is_some_and(Guard::faulted)
    }

    /// Stops guarding the mapping (see `Guard::release`): its vec is done with it.
    pub fn unguard(&self) {
        if let Some(g) = &self.guard {
            g.release();
        }
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

    /// Puts private zero pages over the mapping, so it no longer reaches the file: for a view
    /// of it that cannot be detached, once its vec is closed. Unix only (an error elsewhere).
    pub fn zero(&self) -> io::Result<()> {
        let len = round_up(self.len(), page_size()).ok_or_else(too_large)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the mapping is this FileMap's own, page-aligned and `len` bytes long (whole
        // pages); memmap2 unmaps the same range on drop, whatever is mapped there.
        unsafe { zero_pages(self.ptr(), len) }
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

    /// Copies `dst.len()` bytes from `off` out of the mapping.
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        assert!(off.checked_add(dst.len()).is_some_and(|end| end <= self.len()));
        // SAFETY: in bounds (checked); `dst` is the caller's memory, never inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr().add(off), dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `src` into the mapping at `off`.
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        assert!(off.checked_add(src.len()).is_some_and(|end| end <= self.len()));
        // SAFETY: in bounds (checked); `src` is the caller's memory, never inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr().add(off), src.len()) }
    }

    /// The u32 at `off` as an atomic, for words other processes (and JavaScript's `Atomics`)
    /// read and write at the same time: the live file's sequence counter and waiter count.
    pub fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len());
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `self`, which
        // the reference borrows. AtomicU32 has u32's layout, and every access to the word,
        // here or in other processes, is atomic.
        unsafe { &*self.ptr().add(off).cast::<AtomicU32>() }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // Unregistered before memmap2 unmaps it.
        self.unguard();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_windows_are_aligned_apart_and_never_agree_modulo_256_mib() {
        let mib = 1 << 20;
        // 64 MiB windows would start every 256 MiB at the fifth one without the rule.
        let l = PackLayout::new(&[64 * mib; 9]).unwrap();
        for (k, &(at, len)) in l.windows.iter().enumerate() {
            assert!(at.is_multiple_of(PACK_ALIGN), "{l:?}");
            assert_eq!(len, 64 * mib);
            if k > 0 {
                let (prev, plen) = l.windows[k - 1];
                assert!(at >= prev + plen, "windows overlap: {l:?}");
            }
            for &(o, _) in &l.windows[..k] {
                assert_ne!((at - o) % PREDICTOR_SPAN, 0, "{l:?}");
            }
        }
        let &(last, llen) = l.windows.last().unwrap();
        assert_eq!(l.len, last + llen);
        // Unaligned lengths leave a gap up to the next unit; nothing is moved needlessly.
        let l = PackLayout::new(&[4096, 3 * mib]).unwrap();
        assert_eq!(l.windows, vec![(0, 4096), (PACK_ALIGN, 3 * mib)]);
        assert_eq!(l.len, PACK_ALIGN + 3 * mib);
        assert!(PackLayout::new(&[usize::MAX - 4096, 4096]).is_none());
    }
}
