//! One concern, longer than the crate's other files by design: the Windows half of the platform
//! contract in `mod.rs`, item for item the mirror of `unix.rs`, so the two read side by side.
//!
//! Windows: a reservation is a placeholder (`VirtualAlloc2` with `MEM_RESERVE_PLACEHOLDER`),
//! address space that later calls can replace piece by piece. Mapping a range of the file splits
//! the placeholder there (`VirtualFree` with `MEM_PRESERVE_PLACEHOLDER`) and maps a view of the
//! file into exactly that piece (`MapViewOfFile3` with `MEM_REPLACE_PLACEHOLDER`), so a column
//! grows in place and its base address never moves, as with `MAP_FIXED` on Unix.
//!
//! Unlike `mmap(MAP_FIXED)`, nothing replaces a mapping in one step: a view must go back to a
//! placeholder before anything else can take its place. The reservation therefore keeps a list of
//! its pieces (views, private zero pages, placeholders) to know what to unmap, flush and free.
//!
//! Compiled with `cargo check --target x86_64-pc-windows-msvc` (and aarch64); never run here.
//! docs/DESIGN.md ("Platforms") lists what to test first on a Windows machine.

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr::{null, null_mut, NonNull};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_INVALID_FUNCTION, ERROR_LOCK_VIOLATION, STILL_ACTIVE,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileInformationByHandle, LockFileEx, UnlockFileEx, BY_HANDLE_FILE_INFORMATION, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FlushViewOfFile, MapViewOfFile3, PrefetchVirtualMemory, UnmapViewOfFile2,
    VirtualAlloc2, VirtualFree, MEMORY_MAPPED_VIEW_ADDRESS, MEM_COMMIT, MEM_PRESERVE_PLACEHOLDER,
    MEM_RELEASE, MEM_REPLACE_PLACEHOLDER, MEM_RESERVE, MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS,
    PAGE_READWRITE, PAGE_WRITECOPY, WIN32_MEMORY_RANGE_ENTRY,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};
use windows_sys::Win32::System::IO::{OVERLAPPED, OVERLAPPED_0_0};

use super::placeholders::{Kind, Pieces, Vm};
use super::{round_up, too_large, MapMode, PackLayout};

/// Zero pages cannot replace part of a mapped view in one step on Windows; callers treat the
/// error as "the memory keeps what it maps".
///
/// # Safety
/// As on Unix: the range must be whole pages of a mapping the caller owns.
pub unsafe fn zero_pages(_addr: *mut u8, _len: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "zero pages over a mapping are not supported on Windows",
    ))
}

/// Packs are never made on Windows (see [`Reservation::pack`]); this type has no values.
#[derive(Debug)]
pub enum Pack {}

impl Pack {
    pub fn base(&self) -> *mut u8 {
        match *self {}
    }

    pub fn len(&self) -> usize {
        match *self {}
    }

    pub fn is_empty(&self) -> bool {
        match *self {}
    }

    pub fn zero(&self) -> io::Result<()> {
        match *self {}
    }
}

/// `VirtualFree` flag that merges adjacent placeholders into one (documented with VirtualFree,
/// value 0x1; windows-sys does not define it).
const MEM_COALESCE_PLACEHOLDERS: u32 = 0x1;

/// The system's page size.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        let mut info = SYSTEM_INFO::default();
        // SAFETY: GetSystemInfo only writes the SYSTEM_INFO it is given, a live local.
        unsafe { GetSystemInfo(&mut info) };
        match info.dwPageSize as usize {
            0 => 4096,
            n => n,
        }
    })
}

/// Whether syncing a mapping makes its pages durable by itself: yes, `Reservation::sync` and
/// memmap2's flush of the header both end with FlushFileBuffers.
pub const MAP_SYNC_REACHES_DISK: bool = true;

/// What mapping offsets and the sizes growth produces must be multiples of. Plain views need
/// the 64 KiB allocation granularity for their address and file offset, but a view that
/// replaces a placeholder needs only page alignment (MapViewOfFile3: "the 64k alignment
/// requirements on Offset and BaseAddress do not apply" with `MEM_REPLACE_PLACEHOLDER`), and
/// every view here replaces one: so the page size, as on Unix, and vecs keep the same file
/// sizes on every system.
pub fn map_granularity() -> usize {
    page_size()
}

/// Opens a file, sharing it with other readers and writers (inspect, verify, a readOnly opener
/// waiting for the lock) and with deletion and renaming (removal renames the vec's directory,
/// a schema change renames a new header over the old one, and a temp vec deletes its files
/// while they are open). Windows has no FIFOs among files, so nothing here can block the way
/// `O_NONBLOCK` guards against on Unix.
pub fn open_file(path: &Path, write: bool, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .create_new(create)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .open(path)
}

#[derive(Debug)]
struct State {
    /// What each piece of the reservation holds, in step with the memory manager.
    pieces: Pieces,
    /// A handle of the mapped file and how it is mapped: flushing needs it, and `zero_range`
    /// maps back the part of a view it must unmap.
    file: Option<(File, MapMode)>,
}

/// Nothing to install on Windows (see [`Guard`]).
pub fn ensure_installed() -> bool {
    true
}

/// No SIGBUS exists to guard against: Windows refuses to truncate a file while a view of it is
/// mapped (`ERROR_USER_MAPPED_FILE`), so a mapping never loses its pages to another program.
/// The type is here so that the platform-independent code is the same on every system.
#[derive(Debug)]
pub struct Guard;

impl Guard {
    pub fn new(_base: *mut u8, _len: usize) -> Guard {
        Guard
    }

    pub fn set_len(&self, _len: usize) {}

    /// Never: see the type's documentation.
    pub fn faulted(&self) -> bool {
        false
    }

    pub fn release(&self) {}
}

/// A range of address space of `len` bytes, reserved with no access. File pages are mapped over
/// parts of it; whatever is mapped in it is unmapped when it is dropped.
///
/// ## Safety
/// The reservation owns its address range: nothing else maps or unmaps inside it. Memory inside
/// it stays mapped (to a file, to zero pages or to nothing with no access) until drop, so a
/// pointer into it never refers to memory some other allocation took over. All changes happen
/// under `state`'s lock, so a flush on another thread never touches a view being unmapped.
#[derive(Debug)]
pub struct Reservation {
    base: NonNull<u8>,
    len: usize,
    state: Mutex<State>,
}

// SAFETY: a Reservation is an address range and a list describing it (behind a Mutex); the
// kernel serialises changes to the mappings, and it hands out only raw pointers to its bytes.
unsafe impl Send for Reservation {}
// SAFETY: as above; every method takes `&self`, locks the state and issues system calls.
unsafe impl Sync for Reservation {}

fn check(ok: i32) -> io::Result<()> {
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Reservation {
    /// Reserves `len` bytes (rounded up to pages, at least one page) of address space.
    pub fn new(len: usize) -> io::Result<Reservation> {
        let len = round_up(len.max(1), page_size()).ok_or_else(too_large)?;
        // SAFETY: a placeholder at an address the system chooses touches no existing memory;
        // the null process handle means this process, and no extended parameters are passed.
        let ptr = unsafe {
            VirtualAlloc2(
                null_mut(),
                null(),
                len,
                MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                PAGE_NOACCESS,
                null_mut(),
                0,
            )
        };
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Reservation {
            base,
            len,
            state: Mutex::new(State {
                pieces: Pieces::new(len),
                file: None,
            }),
        })
    }

    /// Never on Windows (see [`Guard`]).
    pub fn faulted(&self) -> bool {
        false
    }

    /// Nothing to release on Windows (see [`Guard`]).
    pub fn unguard(&self) {}

    /// Packs are not made on Windows (a placeholder cannot be split into file views and
    /// committed private pages with one view over all of them); columns keep reservations of
    /// their own, each with its own view.
    pub fn pack(_layout: &PackLayout) -> io::Result<Vec<Reservation>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "packed columns are not made on Windows",
        ))
    }

    /// Never a window of a pack on Windows.
    pub fn pack_of(&self) -> Option<(&Arc<Pack>, usize)> {
        None
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn addr(&self, off: usize) -> *mut c_void {
        self.base.as_ptr().wrapping_add(off).cast()
    }

    fn check_range(&self, from: usize, to: usize) -> io::Result<()> {
        if !from.is_multiple_of(page_size()) || from > to || to > self.len {
            return Err(invalid("range outside the reservation"));
        }
        Ok(())
    }

    /// Maps `file`'s bytes `[from, to)` at the same offsets of the reservation. `from` must be a
    /// multiple of the page size; `to` must not pass the reservation's end nor the file's end.
    /// The range may hold placeholders and zero pages, which the view replaces, but no view:
    /// a view cannot be replaced without a moment in which its memory is inaccessible.
    pub fn map_file(&self, file: &File, from: usize, to: usize, mode: MapMode) -> io::Result<()> {
        self.check_range(from, to)?;
        if from == to {
            return Ok(());
        }
        let mut st = self.lock();
        if st.file.is_none() {
            st.file = Some((file.try_clone()?, mode));
        }
        let mut vm = Calls {
            base: self.base,
            file: Some((file, mode)),
        };
        st.pieces.map(&mut vm, from, to)
    }

    /// Replaces `[from, to)` (page-aligned `from`) with private zero pages, so that the file
    /// behind it can shrink: a native reader still holding a pointer there reads zeros instead
    /// of faulting. Windows refuses to truncate a file under a view of the part cut off
    /// (ERROR_USER_MAPPED_FILE), so views there are unmapped first; a view that straddles
    /// `from` or `to` is unmapped whole and its part outside the range mapped back at the same
    /// address (the one moment its memory is inaccessible: the caller has revoked every view
    /// over the column before shrinking it).
    pub fn zero_range(&self, from: usize, to: usize) -> io::Result<()> {
        self.check_range(from, to)?;
        if from == to {
            return Ok(());
        }
        let mut st = self.lock();
        let State { pieces, file } = &mut *st;
        let mut vm = Calls {
            base: self.base,
            file: file.as_ref().map(|(f, mode)| (f, *mode)),
        };
        pieces.zero(&mut vm, from, to)
    }

    /// Writes dirty pages of `[0, len)` to the file (FlushViewOfFile, view by view) and waits
    /// for the device (FlushFileBuffers: FlushViewOfFile alone does not wait for the disk).
    pub fn sync(&self, len: usize) -> io::Result<()> {
        let len = len.min(self.len);
        if len == 0 {
            return Ok(());
        }
        let file = {
            let st = self.lock();
            let mut flushed = false;
            for p in st.pieces.iter().filter(|p| p.kind == Kind::View && p.start < len) {
                // SAFETY: the view lies inside this reservation and stays mapped while the lock
                // is held; flushing does not change its contents.
                check(unsafe { FlushViewOfFile(self.addr(p.start), p.end.min(len) - p.start) })?;
                flushed = true;
            }
            match &st.file {
                Some((f, MapMode::Shared)) if flushed => Some(f.try_clone()?),
                _ => None,
            }
        };
        // Outside the lock: waiting for the disk must not hold up a growth on the JS thread.
        match file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Asks the system to read `[from, to)` in (PrefetchVirtualMemory). Unix faults the pages in
    /// writable here; Windows has no such call, so the first write still takes a soft fault.
    /// Advice only: a failure (a range shrunk meanwhile) changes nothing and is ignored.
    pub fn populate_write(&self, from: usize, to: usize) {
        self.prefetch(from, to);
    }

    /// Asks the system to read `[from, to)` ahead (PrefetchVirtualMemory). Advice only.
    pub fn will_need(&self, from: usize, to: usize) -> io::Result<()> {
        self.prefetch(from, to);
        Ok(())
    }

    fn prefetch(&self, from: usize, to: usize) {
        let start = from / page_size() * page_size();
        let to = to.min(self.len);
        if start >= to {
            return;
        }
        let range = WIN32_MEMORY_RANGE_ENTRY {
            VirtualAddress: self.addr(start),
            NumberOfBytes: to - start,
        };
        // SAFETY: the range lies inside this reservation and the entry is a live local;
        // prefetching reads pages in without changing them, and fails on what is not mapped.
        unsafe {
            PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0);
        }
    }
}

/// The memory manager's calls on one reservation, for [`Pieces`] to make. Each is given a
/// range the piece list knows to be a placeholder, a view or zero pages of this reservation,
/// exactly as the call requires (the tests in `placeholders.rs` hold the list to those rules).
struct Calls<'a> {
    base: NonNull<u8>,
    /// The file views map, and how; `zero_range` has none before anything was mapped.
    file: Option<(&'a File, MapMode)>,
}

impl Calls<'_> {
    fn addr(&self, off: usize) -> *mut c_void {
        self.base.as_ptr().wrapping_add(off).cast()
    }
}

impl Vm for Calls<'_> {
    fn split_placeholder(&mut self, start: usize, at: usize) -> io::Result<()> {
        // SAFETY: [start, at) is the leading part of a placeholder of this reservation;
        // MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER splits it off as a placeholder of its own.
        check(unsafe {
            VirtualFree(
                self.addr(start),
                at - start,
                MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
            )
        })
    }

    fn coalesce(&mut self, from: usize, to: usize) -> io::Result<()> {
        // SAFETY: [from, to) is exactly a run of adjacent placeholders of this reservation.
        check(unsafe {
            VirtualFree(
                self.addr(from),
                to - from,
                MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS,
            )
        })
    }

    fn unmap_view(&mut self, start: usize, _end: usize) -> io::Result<()> {
        // SAFETY: a view this reservation mapped at exactly this address; the caller made sure
        // no one uses its memory now (views were revoked before a shrink, see zero_range).
        check(unsafe {
            UnmapViewOfFile2(
                GetCurrentProcess(),
                MEMORY_MAPPED_VIEW_ADDRESS {
                    Value: self.addr(start),
                },
                MEM_PRESERVE_PLACEHOLDER,
            )
        })
    }

    fn free_zero(&mut self, start: usize, end: usize) -> io::Result<()> {
        // SAFETY: exactly one private allocation that replaced a placeholder of this
        // reservation; it holds nothing but zeros.
        check(unsafe {
            VirtualFree(
                self.addr(start),
                end - start,
                MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
            )
        })
    }

    fn commit_zero(&mut self, start: usize, end: usize) -> io::Result<()> {
        // SAFETY: exactly one placeholder of this reservation, which MEM_REPLACE_PLACEHOLDER
        // replaces in place; null process: this process.
        let ptr = unsafe {
            VirtualAlloc2(
                null_mut(),
                self.addr(start),
                end - start,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                PAGE_READWRITE,
                null_mut(),
                0,
            )
        };
        if ptr.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn map_view(&mut self, start: usize, end: usize) -> io::Result<()> {
        let (file, mode) = self.file.ok_or_else(|| invalid("mapping without a file"))?;
        // Copy-on-write sections and views for read-only vecs: writes stay in this process.
        let prot = match mode {
            MapMode::Shared => PAGE_READWRITE,
            MapMode::Private => PAGE_WRITECOPY,
        };
        // SAFETY: the handle is a live file; a section of its current size (maximum size 0),
        // unnamed, with default security.
        let section = unsafe { CreateFileMappingW(file.as_raw_handle(), null(), prot, 0, 0, null()) };
        if section.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: exactly one placeholder of this reservation, which MEM_REPLACE_PLACEHOLDER
        // replaces with the view; the file offset equals the address's offset in the
        // reservation (page-aligned, which is all placeholder views require).
        let view = unsafe {
            MapViewOfFile3(
                section,
                GetCurrentProcess(),
                self.addr(start),
                start as u64,
                end - start,
                MEM_REPLACE_PLACEHOLDER,
                prot,
                null_mut(),
                0,
            )
        };
        let err = io::Error::last_os_error();
        // The view keeps the section alive; the handle is not needed any more.
        // SAFETY: `section` is a handle this function opened and closes once.
        unsafe { CloseHandle(section) };
        if view.Value.is_null() {
            return Err(err);
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for p in st.pieces.iter() {
            // SAFETY: the reservation owns every piece; whoever pointed into it (views, flush
            // jobs) held an Arc to it, so being dropped means no one can use the range any more.
            // Each piece is its own region to the memory manager and is released whole.
            unsafe {
                match p.kind {
                    Kind::View => {
                        UnmapViewOfFile2(
                            GetCurrentProcess(),
                            MEMORY_MAPPED_VIEW_ADDRESS {
                                Value: self.base.as_ptr().wrapping_add(p.start).cast(),
                            },
                            0,
                        );
                    }
                    Kind::Zero | Kind::Placeholder => {
                        VirtualFree(self.base.as_ptr().wrapping_add(p.start).cast(), 0, MEM_RELEASE);
                    }
                }
            }
        }
    }
}

/// Reserves disk blocks for `file` up to `len` bytes and extends it to that size
/// (SetFileInformationByHandle with FileAllocationInfo, through fs4), so that a full disk shows
/// up here as ENOSPC and never later as an in-page error on a write. Where the file system
/// cannot reserve blocks, the file is only extended.
pub fn allocate(file: &File, len: u64) -> io::Result<()> {
    match fs4::FileExt::allocate(file, len) {
        Ok(()) => {}
        Err(e)
            if e.kind() == io::ErrorKind::Unsupported
                || e.raw_os_error() == Some(ERROR_INVALID_FUNCTION as i32) => {}
        Err(e) => return Err(e),
    }
    // fs4 leaves the logical size alone when the allocation already covers `len`.
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// Windows decides deletion by each file's ACL, which no cheap call answers beforehand; a
/// remove that fails there puts the vec back (see `MmapVec::remove`).
pub fn check_dir_writable(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The file's size: NTFS files are sparse only when a program marks them so
/// (`FSCTL_SET_SPARSE`), and copying one writes it whole; a vec's files are never marked.
pub fn allocated_bytes(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// Writes all of `buf` into `file` at `offset`. Mapped views of a local file and file writes go
/// through the same cache, so the bytes show in the mapping at once.
pub fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sleeps a millisecond (at most `timeout`) and says whether the word changed: Windows'
/// `WaitOnAddress` wakes only threads of the same process, so readers in other processes poll.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) -> bool {
    std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
    word.load(std::sync::atomic::Ordering::Acquire) != expected
}

/// Nothing to wake on Windows: waiters poll (see [`futex_wait`]).
pub fn futex_wake(_word: &AtomicU32) {}

/// Opens (making it when missing) a vec's live file read-write, never through a reparse point
/// (a symbolic link).
pub fn open_live_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// Where the advisory lock sits: one byte far past any data. `LockFileEx` locks are mandatory
/// for `ReadFile`, so a lock over the header's bytes would keep readers beside the writer from
/// reading it; a range past them leaves reads alone (mapped views ignore locks either way).
const LOCK_OFFSET: u64 = u64::MAX - 1;

fn lock_overlapped() -> OVERLAPPED {
    let mut o = OVERLAPPED::default();
    o.Anonymous.Anonymous = OVERLAPPED_0_0 {
        Offset: LOCK_OFFSET as u32,
        OffsetHigh: (LOCK_OFFSET >> 32) as u32,
    };
    o
}

/// Takes the advisory lock on `file` without waiting: `LockFileEx` on one byte at
/// [`LOCK_OFFSET`], shared or exclusive.
pub fn try_lock(file: &File, exclusive: bool) -> Result<(), std::fs::TryLockError> {
    let mut o = lock_overlapped();
    let flags = LOCKFILE_FAIL_IMMEDIATELY | if exclusive { LOCKFILE_EXCLUSIVE_LOCK } else { 0 };
    // SAFETY: the handle is the open file's; `o` lives through the call, which completes
    // before it returns (the handle is not opened for overlapped I/O).
    let ok = unsafe { LockFileEx(file.as_raw_handle(), flags, 0, 1, 0, &mut o) };
    if ok != 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
        Err(std::fs::TryLockError::WouldBlock)
    } else {
        Err(std::fs::TryLockError::Error(e))
    }
}

/// Releases what [`try_lock`] took.
pub fn unlock(file: &File) -> io::Result<()> {
    let mut o = lock_overlapped();
    // SAFETY: as in `try_lock`; the range is the one it locked.
    let ok = unsafe { UnlockFileEx(file.as_raw_handle(), 0, 1, 0, &mut o) };
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a process with this id exists.
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: OpenProcess takes no pointers; the handle it returns is closed below.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        // Denied means it exists (another user's, or protected); anything else means it does not.
        return io::Error::last_os_error().raw_os_error() == Some(ERROR_ACCESS_DENIED as i32);
    }
    let mut code = 0u32;
    // SAFETY: `h` is a live process handle with query rights; `code` is a live local.
    let ok = unsafe { GetExitCodeProcess(h, &mut code) } != 0;
    // SAFETY: `h` was opened above and is closed once.
    unsafe { CloseHandle(h) };
    // A process that exited with code 259 (STILL_ACTIVE) looks alive: the caller only uses this
    // to decide what may be deleted, where "alive" is the safe answer.
    !ok || code == STILL_ACTIVE as u32
}

/// Makes a directory entry change (create, rename) durable: nothing to do on Windows. NTFS
/// writes directory changes through its metadata journal, so a rename is never half done after
/// a crash, and std offers no directory sync (FlushFileBuffers on a directory needs a handle
/// opened for writing with backup semantics, which ordinary users may be refused). A power cut
/// right after a create or schema change may therefore undo it, leaving the previous state.
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The file's (volume serial number, file index): identifies it across paths, for the
/// in-process lock registry and to notice a header file replaced by a rename. (std's
/// `MetadataExt` has these only on nightly.) ReFS has 128-bit file ids, of which this is the
/// low half.
pub fn file_id(file: &File) -> io::Result<(u64, u64)> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: the handle is a live file; `info` is a live local the call fills.
    check(unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) })?;
    Ok((
        info.dwVolumeSerialNumber as u64,
        (info.nFileIndexHigh as u64) << 32 | info.nFileIndexLow as u64,
    ))
}

/// The id of the file at `path` (following symlinks, as opening it does).
pub fn path_id(path: &Path) -> io::Result<(u64, u64)> {
    // Access 0: only attributes are read, so neither locks nor share modes get in the way.
    let f = OpenOptions::new()
        .access_mode(0)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .open(path)?;
    file_id(&f)
}

/// Whether opening a vec's file failed because something other than a regular file is there.
/// Opening a directory as a file is refused with ERROR_ACCESS_DENIED, so a denial is looked at.
pub fn is_not_regular(err: &io::Error, path: &Path) -> bool {
    err.kind() == io::ErrorKind::IsADirectory
        || (err.kind() == io::ErrorKind::PermissionDenied
            && std::fs::metadata(path).is_ok_and(|m| m.is_dir()))
}

/// Overlay mode is not available: mapping a file over memory V8 allocated needs a mapping that
/// replaces existing memory in place (`mmap(MAP_FIXED)`), which Windows has no call for.
pub const OVERLAY: bool = false;

fn no_overlay() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "overlay mode maps files over existing memory with mmap(MAP_FIXED), which Windows lacks",
    )
}

/// Unsupported on Windows (see [`OVERLAY`]): always an error, and nothing is changed.
///
/// # Safety
/// None needed here; the signature is the Unix one, whose contract callers follow.
pub unsafe fn map_file_over(
    _addr: *mut u8,
    _len: usize,
    _file: &File,
    _mode: super::MapMode,
) -> io::Result<()> {
    Err(no_overlay())
}

/// Unsupported on Windows (see [`OVERLAY`]): always an error, and nothing is changed.
///
/// # Safety
/// None needed here; the signature is the Unix one, whose contract callers follow.
pub unsafe fn restore_anonymous(_addr: *mut u8, _len: usize) -> io::Result<()> {
    Err(no_overlay())
}
