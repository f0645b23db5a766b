//! One concern, longer than the crate's other files by design: the Unix half of the platform
//! contract in `mod.rs`, item for item the mirror of `windows.rs`, so the two read side by side.
//!
//! Unix: reservations are `PROT_NONE` anonymous mappings; files are mapped over their start with
//! `MAP_FIXED`, so a column grows in place and its base address never moves.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

use super::{round_up, too_large, Guard, MapMode, PackLayout, PACK_ALIGN};

/// The system's page size.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as usize
        } else {
            4096
        }
    })
}

/// Whether syncing a mapping (msync MS_SYNC) makes its pages durable by itself. On macOS it
/// writes them to the drive but leaves them in the drive's cache; only `F_FULLFSYNC`, which
/// std's `sync_data` issues there, flushes that, so a flush also syncs each file on macOS.
pub const MAP_SYNC_REACHES_DISK: bool = !cfg!(target_vendor = "apple");

/// What mapping offsets and the sizes growth produces must be multiples of: the page size.
pub fn map_granularity() -> usize {
    page_size()
}

/// Opens a file without ever blocking on it: a FIFO or a device put where a vec's file should
/// be must give an error at once, not hang the process.
pub fn open_file(path: &Path, write: bool, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .create_new(create)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// A range of address space of `len` bytes, reserved with no access. File pages are mapped over
/// parts of it; whatever is mapped in it is unmapped when it is dropped.
///
/// ## Safety
/// The reservation owns its address range: nothing else maps or unmaps inside it. Memory inside
/// it stays mapped (to a file, to zero pages or to nothing with no access) until drop, so a
/// pointer into it never refers to memory some other allocation took over.
#[derive(Debug)]
pub struct Reservation {
    base: NonNull<u8>,
    /// The usable bytes from `base`.
    len: usize,
    /// The whole mapping from `base`, which drop unmaps: `len` and a skew (see
    /// [`Reservation::new`]).
    whole_len: usize,
    /// A window of a [`Pack`]: the range belongs to the pack, which unmaps it.
    pack: Option<Arc<Pack>>,
    /// The SIGBUS guard of the file pages mapped from `base` (taken before the range goes).
    guard: Option<Guard>,
}

/// One mapping holding several windows (reservations of their own size exactly) back to back,
/// so that one ArrayBuffer can cover all of them (see `MmapVec`'s packed columns). It is private
/// anonymous read-write memory that reserves nothing (`MAP_NORESERVE`) with the files mapped
/// over the windows: every byte of it can be read and written, including the zero pages between
/// windows, and a view over all of it never faults.
///
/// ## Safety
/// The pack owns its address range; each window owns its part of it (nothing else maps there)
/// and puts zero pages back over it when dropped. The pack unmaps the whole range when the last
/// window and the last view holding it are gone.
#[derive(Debug)]
pub struct Pack {
    /// Where the first window starts (aligned to [`PACK_ALIGN`]).
    base: NonNull<u8>,
    /// Bytes from the first window's start to the end of the last (whole pages).
    len: usize,
}

// SAFETY: as for Reservation: an address range, with no Rust references into it.
unsafe impl Send for Pack {}
// SAFETY: as above; its methods only read its fields.
unsafe impl Sync for Pack {}

impl Pack {
    /// Where the first window starts.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Bytes from [`base`](Self::base) to the end of the last window, all readable and
    /// writable for as long as the pack lives.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Puts zero pages over the whole pack: for a view over it that cannot be detached, once
    /// its vec is gone. The windows then hold no file any more.
    pub fn zero(&self) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: the pack owns [base, base + len), whole pages, and anonymous pages in place
        // of the files are what it holds between windows anyway.
        unsafe { zero_pages(self.base(), self.len) }
    }
}

/// Maps `len` bytes (whole pages) of private anonymous memory with `prot`, reserving nothing,
/// at an address aligned to `align` (a power of two, at least a page): more is mapped, and the
/// parts before and after the aligned range are unmapped again.
fn map_aligned(len: usize, align: usize, prot: libc::c_int) -> io::Result<NonNull<u8>> {
    let slack = align - page_size();
    let total = len.checked_add(slack).ok_or_else(too_large)?;
    // SAFETY: an anonymous mapping at an address the kernel chooses touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let head = (ptr as usize).next_multiple_of(align) - ptr as usize;
    let tail = slack - head;
    // SAFETY: both ranges are parts of the mapping just made, which nothing else knows of; what
    // stays is [ptr + head, ptr + head + len). A failed trim only leaves address space reserved
    // until exit.
    let ptr = unsafe {
        if head > 0 {
            libc::munmap(ptr, head);
        }
        if tail > 0 {
            libc::munmap(ptr.cast::<u8>().add(head + len).cast(), tail);
        }
        ptr.cast::<u8>().add(head)
    };
    NonNull::new(ptr).ok_or_else(io::Error::last_os_error)
}

/// Puts private zero pages (reserving nothing) over `[addr, addr + len)`.
///
/// # Safety
/// The range must be whole pages of a mapping the caller owns; whatever was mapped there is
/// replaced.
pub unsafe fn zero_pages(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range, so MAP_FIXED replaces only its own mapping.
    let ptr = unsafe {
        libc::mmap(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Pack {
    fn drop(&mut self) {
        // SAFETY: the pack owns [base, base + len); every window and view over it held an Arc
        // to it, so no one can use the range any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: a Reservation is an address range; the kernel serialises changes to the mappings in
// it, and it hands out no Rust references to its bytes, only raw pointers.
unsafe impl Send for Reservation {}
// SAFETY: as above; every method takes `&self` and only issues system calls on the range.
unsafe impl Sync for Reservation {}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// mmap flags for a file mapped at a chosen address in `mode`.
fn fixed_file_flags(mode: MapMode) -> libc::c_int {
    libc::MAP_FIXED
        | match mode {
            MapMode::Shared => libc::MAP_SHARED,
            // No commit charge: the pages are the file's until a stray write copies one, and a
            // large read-only vec must not count against the memory limit as if written.
            MapMode::Private => libc::MAP_PRIVATE | libc::MAP_NORESERVE,
        }
}

impl Reservation {
    /// Reserves `len` bytes (rounded up to pages, at least one page) of address space.
    ///
    /// The mapping is longer than asked by a skew that differs from reservation to reservation
    /// (Fibonacci hashing of a counter: 0 to 127 times 2 MiB). The kernel places mappings next
    /// to each other, so reservations of one size land a multiple of that size apart, and with
    /// the default 1 GiB the columns' addresses agreed in bits 12-29: a loop reading one column
    /// and writing another (`x[i] += vx[i] * dt`) then ran well below the same loop over
    /// in-memory arrays on an AMD EPYC (its L1 way predictor tags lines by a hash of address
    /// bits 12-27), and as fast with the skew (BENCHMARKS.md, "Targets: met and missed", tick).
    /// The skew trails the usable range (leading it would cancel out when the kernel places each
    /// mapping just below the previous one) and is whole 2 MiB units: a skew of single pages
    /// also fixed the loop but made a flush several times slower, as the kernel maps the page
    /// cache's large folios best at 2 MiB-aligned addresses.
    pub fn new(len: usize) -> io::Result<Reservation> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let skew = (k.wrapping_mul(0x9E37_79B9) >> 25) as usize * (2 << 20);
        let len = round_up(len.max(1), page_size()).ok_or_else(too_large)?;
        // From 2 MiB on, whole 2 MiB units at a 2 MiB-aligned address: the page cache's large
        // folios map in a few faults there. A column that moved into a reservation the kernel
        // did not align (four times an odd size) took a hundred times the page faults in the
        // next pass over it.
        let align = if len >= PACK_ALIGN {
            PACK_ALIGN
        } else {
            page_size()
        };
        let len = round_up(len, align).ok_or_else(too_large)?;
        let whole_len = len.checked_add(skew).ok_or_else(too_large)?;
        let base = map_aligned(whole_len, align, libc::PROT_NONE)?;
        Ok(Reservation {
            base,
            len,
            whole_len,
            pack: None,
            guard: Some(Guard::new(base.as_ptr(), 0)),
        })
    }

    /// Maps one [`Pack`] laid out as `layout` says and returns its windows, in order: each a
    /// reservation exactly as long as its window, holding zero pages until a file is mapped
    /// over it.
    pub fn pack(layout: &PackLayout) -> io::Result<Vec<Reservation>> {
        let page = page_size();
        if layout
            .windows
            .iter()
            .any(|&(at, len)| !at.is_multiple_of(page) || !len.is_multiple_of(page))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "windows must be whole pages",
            ));
        }
        let len = round_up(layout.len, page).ok_or_else(too_large)?;
        let base = map_aligned(len, PACK_ALIGN, libc::PROT_READ | libc::PROT_WRITE)?;
        let pack = Arc::new(Pack { base, len });
        let base = pack.base();
        layout
            .windows
            .iter()
            .map(|&(at, len)| {
                let base = NonNull::new(base.wrapping_add(at)).ok_or_else(too_large)?;
                Ok(Reservation {
                    base,
                    len,
                    whole_len: len,
                    pack: Some(pack.clone()),
                    guard: Some(Guard::new(base.as_ptr(), 0)),
                })
            })
            .collect()
    }

    /// The pack this reservation is a window of, and the window's offset from the pack's base.
    pub fn pack_of(&self) -> Option<(&Arc<Pack>, usize)> {
        self.pack
            .as_ref()
            .map(|p| (p, self.base.as_ptr() as usize - p.base() as usize))
    }

    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maps `file`'s bytes `[from, to)` at the same offsets of the reservation. `from` must be a
    /// multiple of the page size; `to` must not pass the reservation's end nor the end of the
    /// file's last page.
    pub fn map_file(&self, file: &File, from: usize, to: usize, mode: MapMode) -> io::Result<()> {
        if !from.is_multiple_of(page_size()) || from > to || to > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mapping outside the reservation",
            ));
        }
        if from == to {
            return Ok(());
        }
        let flags = fixed_file_flags(mode);
        // SAFETY: [base + from, base + to) lies inside this reservation, which owns the range,
        // so MAP_FIXED replaces only our own mapping there.
        let ptr = unsafe {
            libc::mmap(
                self.base.as_ptr().add(from).cast(),
                to - from,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                file.as_raw_fd(),
                from as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if let Some(g) = &self.guard {
            g.set_len(to);
        }
        Ok(())
    }

    /// Whether a page of the file faulted (the file was cut short under the mapping, or a
    /// write found no disk space): from there on the reservation holds zero pages.
    pub fn faulted(&self) -> bool {
        self.guard.as_ref().is_some_and(Guard::faulted)
    }

    /// Stops guarding the mapping (see [`Guard::release`]): its vec is done with it.
    pub fn unguard(&self) {
        if let Some(g) = &self.guard {
            g.release();
        }
    }

    /// Replaces `[from, to)` (page-aligned `from`) with private zero pages, so that the file
    /// behind it can shrink: a native reader still holding a pointer there reads zeros instead
    /// of faulting on pages past the end of the file.
    pub fn zero_range(&self, from: usize, to: usize) -> io::Result<()> {
        if !from.is_multiple_of(page_size()) || from > to || to > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range outside the reservation",
            ));
        }
        if from == to {
            return Ok(());
        }
        // SAFETY: the range lies inside this reservation (checked above), which owns it.
        unsafe { zero_pages(self.base.as_ptr().add(from), to - from) }
    }

    /// Writes dirty pages of `[0, len)` to the file and waits for the device (msync MS_SYNC).
    pub fn sync(&self, len: usize) -> io::Result<()> {
        let len = len.min(self.len);
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies inside this reservation, which stays mapped while `self` lives.
        check(unsafe { libc::msync(self.base.as_ptr().cast(), len, libc::MS_SYNC) })
    }

    /// Faults `[from, to)` in, writable, as a write would (madvise POPULATE_WRITE, Linux 5.14
    /// and later): the page-cache work of a first write happens here instead of in the writer.
    /// Advice only: where the kernel lacks it, or the range was shrunk meanwhile, nothing
    /// happens (no signal: the kernel reports such faults as an error to this call). Other
    /// systems (macOS) have no such advice; there the writer faults its pages in itself.
    pub fn populate_write(&self, from: usize, to: usize) {
        #[cfg(target_os = "linux")]
        {
            let start = from / page_size() * page_size();
            let to = to.min(self.len);
            if start < to {
                // SAFETY: the range lies inside this reservation; populating does not change
                // contents.
                unsafe {
                    libc::madvise(
                        self.base.as_ptr().add(start).cast(),
                        to - start,
                        libc::MADV_POPULATE_WRITE,
                    );
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (from, to);
    }

    /// Asks the kernel to read `[from, to)` ahead (madvise WILLNEED). Advice only: errors are
    /// reported but change nothing.
    pub fn will_need(&self, from: usize, to: usize) -> io::Result<()> {
        let start = from / page_size() * page_size();
        let to = to.min(self.len);
        if start >= to {
            return Ok(());
        }
        // SAFETY: the range lies inside this reservation; WILLNEED does not change its contents.
        check(unsafe {
            libc::madvise(
                self.base.as_ptr().add(start).cast(),
                to - start,
                libc::MADV_WILLNEED,
            )
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Unregistered before the range is zeroed or unmapped: once unmapped, the addresses
        // may be someone else's.
        self.unguard();
        if self.pack.is_some() {
            // A window: the pack (still alive while a view over it is) keeps the range mapped;
            // zero pages go back over it, so it no longer holds the file, which may then
            // shrink under it without a touch of those pages faulting. On a failure the file
            // stays mapped there until the pack goes.
            let _ = self.zero_range(0, self.len);
            return;
        }
        // SAFETY: the reservation owns [base, base + whole_len); whoever pointed into it (views,
        // flush jobs) held an Arc to it, so being dropped means no one can use the range any
        // more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.whole_len);
        }
    }
}

/// Overlay mode is available: files can be mapped over memory V8 allocated.
pub const OVERLAY: bool = true;

/// Maps `file`'s bytes `[0, len)` with `MAP_FIXED` over `[addr, addr + len)`: memory the
/// caller owns but did not map itself (overlay mode: the start of a `WebAssembly.Memory` that
/// V8 allocated). `addr` and `len` must be multiples of the page size.
///
/// # Safety
/// - `[addr, addr + len)` must be memory that the caller's allocation owns entirely, whole pages
///   holding nothing else (no allocator metadata, no other allocation); the previous contents
///   of that range are discarded.
/// - The range must be put back with [`restore_anonymous`] before its owner may free, move or
///   reuse it: freed memory that is still a file mapping would let unrelated allocations write
///   into the file.
/// - `len` must not pass the end of the file's last page (a touch there raises SIGBUS).
/// - On failure the range may hold neither its old contents nor the file (MAP_FIXED may have
///   unmapped it): the caller must keep treating it as mapped (never let it be freed).
pub unsafe fn map_file_over(addr: *mut u8, len: usize, file: &File, mode: MapMode) -> io::Result<()> {
    check_overlay_range(addr, len)?;
    let flags = fixed_file_flags(mode);
    // SAFETY: the caller owns the whole pages of the range and gives up their contents.
    let ptr = unsafe {
        libc::mmap(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces `[addr, addr + len)` with private anonymous zero pages, readable and writable: what
/// an allocator's memory is, so that its owner can free or reuse it again. The file's pages
/// are no longer reachable through the range.
///
/// # Safety
/// `[addr, addr + len)` must be a range the caller mapped with [`map_file_over`] and still owns;
/// its contents become zero.
pub unsafe fn restore_anonymous(addr: *mut u8, len: usize) -> io::Result<()> {
    check_overlay_range(addr, len)?;
    // SAFETY: the caller owns the range (it mapped the file there); replacing it changes no
    // memory outside it.
    let ptr = unsafe {
        libc::mmap(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn check_overlay_range(addr: *mut u8, len: usize) -> io::Result<()> {
    if len == 0 || !(addr as usize).is_multiple_of(page_size()) || !len.is_multiple_of(page_size()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an overlay must be whole, page-aligned pages",
        ));
    }
    Ok(())
}

/// Reserves disk blocks for `file` up to `len` bytes and extends it to that size, so that a full
/// disk shows up here as ENOSPC and never later as SIGBUS on a write into a sparse page. Where
/// the file system cannot reserve blocks, the file is only extended.
pub fn allocate(file: &File, len: u64) -> io::Result<()> {
    ignore_file_size_signal();
    match fs4::FileExt::allocate(file, len) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
        Err(e) => return Err(e),
    }
    // fallocate may leave the logical size alone on some systems; make sure it is `len`.
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// How many bytes of `file` have disk blocks behind them (st_blocks). Fewer than its size:
/// the file is sparse, as `cp --sparse=always`, `rsync -S` or a restore from a backup make a
/// vec's column files, and a store into a hole on a full disk would raise SIGBUS, so
/// [`allocate`] reserves the blocks first. (`lseek(SEEK_HOLE)` cannot tell: ext4 reports the
/// blocks `fallocate` reserved but nothing wrote as holes too.)
pub fn allocated_bytes(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    // st_blocks counts 512-byte units on every Unix.
    Ok(file.metadata()?.blocks().saturating_mul(512))
}

/// Writes all of `buf` into `file` at `offset` (pwrite). The page cache is shared with every
/// mapping of the file, so the bytes show in the mapping at once.
pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// A process over its file size limit (RLIMIT_FSIZE, `ulimit -f`) gets SIGXFSZ, whose default
/// action kills it. Where nobody chose another action, ignore the signal: the growth then fails
/// with EFBIG, which becomes an ENOSPC error, and the process lives. A handler someone
/// installed (Node's `process.on('SIGXFSZ')`) is left alone.
fn ignore_file_size_signal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction with a null new action only reads the current one into `old`,
        // a zeroed, properly sized sigaction struct.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGXFSZ, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_DFL
            {
                let mut ignore: libc::sigaction = std::mem::zeroed();
                ignore.sa_sigaction = libc::SIG_IGN;
                libc::sigaction(libc::SIGXFSZ, &ignore, std::ptr::null_mut());
            }
        }
    });
}

/// Waits until the word no longer holds `expected`, a wake-up, or `timeout`; true when woken or
/// the word had changed. A futex without `FUTEX_PRIVATE_FLAG`: the word is in a file mapping
/// shared with other processes, which the kernel keys by file and offset (std's and the
/// atomic-wait crate's futexes are private to a process). Elsewhere than Linux it sleeps a
/// millisecond, and the caller polls.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) -> bool {
    #[cfg(target_os = "linux")]
    {
        // `as _`: the fields' types differ between C libraries (musl deprecates naming time_t).
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // SAFETY: `word` is a live, aligned u32 for the call's duration; the kernel only reads
        // it and `ts`, and FUTEX_WAIT with a relative timeout takes no other pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &ts as *const libc::timespec,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
        word.load(std::sync::atomic::Ordering::Acquire) != expected
    }
}

/// Wakes every thread, in any process, waiting in [`futex_wait`] on `word`.
pub fn futex_wake(word: &AtomicU32) {
    #[cfg(target_os = "linux")]
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is live and aligned.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            0usize,
            0usize,
            0u32,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = word;
}

/// Opens (making it when missing) a vec's live file read-write, never through a symbolic link
/// and never blocking (a FIFO put there).
pub fn open_live_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Takes the advisory lock on `file` without waiting: `flock` (std's), on the whole file.
pub fn try_lock(file: &File, exclusive: bool) -> Result<(), std::fs::TryLockError> {
    if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    }
}

/// Releases what [`try_lock`] took.
pub fn unlock(file: &File) -> io::Result<()> {
    file.unlock()
}

/// Whether a process with this id exists (on this machine's process namespace).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Fails (EACCES, EROFS, ...) when this process may not delete entries of the directory
/// `dir`: it needs write and search permission on it (access(2), which honours the real user,
/// a read-only mount and, for root, nothing else).
pub fn check_dir_writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: a NUL-terminated path that lives across the call; access only reads it.
    check(unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) })
}

/// Makes a directory entry change (create, rename) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The file's (device, inode): identifies it across paths, for the in-process lock registry.
pub fn file_id(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// The (device, inode) of the file at `path` (following symlinks, as opening it does).
pub fn path_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Whether opening a vec's file failed because something other than a regular file is there:
/// a directory, a symlink loop, a socket, or a device without a driver.
pub fn is_not_regular(err: &io::Error, _path: &Path) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EISDIR) | Some(libc::ELOOP) | Some(libc::ENXIO) | Some(libc::ENODEV)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_from_2_mib_on_are_whole_units_at_aligned_addresses() {
        for len in [2 << 20, (2 << 20) + 4096, 214_749_184 * 4, 1 << 30] {
            let r = Reservation::new(len).unwrap();
            assert!(
                r.len() >= len && r.len().is_multiple_of(PACK_ALIGN),
                "{len}: {}",
                r.len()
            );
            assert!(
                (r.base() as usize).is_multiple_of(PACK_ALIGN),
                "{len}: {:p}",
                r.base()
            );
        }
        // Smaller ones stay as asked (the `reservation` option's small values mean what they say).
        let r = Reservation::new(1 << 20).unwrap();
        assert_eq!(r.len(), 1 << 20);
        assert!((r.base() as usize).is_multiple_of(page_size()));
    }

    #[test]
    fn reservations_of_one_size_differ_in_address_bits_12_to_27() {
        // Columns are reserved one after another with the same size; their rows must not all
        // share the bits the L1 way predictor hashes (see `Reservation::new`).
        let rs: Vec<_> = (0..8).map(|_| Reservation::new(1 << 30).unwrap()).collect();
        let tags: std::collections::HashSet<usize> =
            rs.iter().map(|r| (r.base() as usize >> 12) & 0xffff).collect();
        assert!(tags.len() >= 7, "{tags:x?}");
    }
}
