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
use std::sync::{Mutex, MutexGuard, OnceLock};

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_INVALID_FUNCTION, STILL_ACTIVE,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE,
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

use super::{round_up, too_large, MapMode};

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

/// What a piece of a reservation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A placeholder: reserved address space, no access.
    Placeholder,
    /// A view of the file, at the same offset in the file as in the reservation.
    View,
    /// Committed private pages of zeros (what `zero_range` leaves).
    Zero,
}

#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug)]
struct State {
    /// Sorted and contiguous, covering `[0, len)` exactly; each piece is one placeholder, one
    /// view or one private allocation as far as the memory manager is concerned.
    pieces: Vec<Piece>,
    /// A handle of the mapped file and how it is mapped: flushing needs it, and `zero_range`
    /// maps back the part of a view it must unmap.
    file: Option<(File, MapMode)>,
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
                pieces: vec![Piece {
                    start: 0,
                    end: len,
                    kind: Kind::Placeholder,
                }],
                file: None,
            }),
        })
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
        if st
            .pieces
            .iter()
            .any(|p| p.kind == Kind::View && p.start < to && p.end > from)
        {
            return Err(invalid("the range is already mapped"));
        }
        if st.file.is_none() {
            st.file = Some((file.try_clone()?, mode));
        }
        let pieces = &mut st.pieces;
        self.split(pieces, from)?;
        self.split(pieces, to)?;
        for i in 0..pieces.len() {
            if pieces[i].start >= from && pieces[i].end <= to {
                self.to_placeholder(pieces, i)?;
            }
        }
        self.coalesce(pieces, from, to)?;
        let i = index_at(pieces, from);
        self.map_view(pieces, i, file, mode)
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
        // Views that reach out of the range: unmap each whole, cut it at the range's ends, and
        // map back what lies outside.
        while let Some(i) = pieces.iter().position(|p| {
            p.kind == Kind::View && p.start < to && p.end > from && (p.start < from || p.end > to)
        }) {
            let (start, end) = (pieces[i].start, pieces[i].end);
            let (f, mode) = file.as_ref().ok_or_else(|| invalid("a view without its file"))?;
            self.to_placeholder(pieces, i)?;
            self.split(pieces, from)?;
            self.split(pieces, to)?;
            if start < from {
                let k = index_at(pieces, start);
                self.map_view(pieces, k, f, *mode)?;
            }
            if end > to {
                let k = index_at(pieces, to);
                self.map_view(pieces, k, f, *mode)?;
            }
        }
        self.split(pieces, from)?;
        self.split(pieces, to)?;
        for i in 0..pieces.len() {
            if pieces[i].start >= from && pieces[i].end <= to && pieces[i].kind != Kind::Zero {
                self.to_placeholder(pieces, i)?;
                self.commit_zero(pieces, i)?;
            }
        }
        Ok(())
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

    /// Makes `at` a boundary between pieces. Only placeholders and zero pages are split here;
    /// a view is the callers' business (it cannot be split without unmapping it).
    fn split(&self, pieces: &mut Vec<Piece>, at: usize) -> io::Result<()> {
        let Some(i) = pieces.iter().position(|p| p.start < at && at < p.end) else {
            return Ok(());
        };
        let p = pieces[i];
        match p.kind {
            Kind::View => return Err(invalid("splitting a view")),
            Kind::Zero => self.to_placeholder(pieces, i)?,
            Kind::Placeholder => {}
        }
        // SAFETY: [start, at) is the leading part of a placeholder of this reservation;
        // MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER splits it off as a placeholder of its own.
        check(unsafe {
            VirtualFree(
                self.addr(p.start),
                at - p.start,
                MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
            )
        })?;
        pieces[i] = Piece {
            start: p.start,
            end: at,
            kind: Kind::Placeholder,
        };
        pieces.insert(
            i + 1,
            Piece {
                start: at,
                end: p.end,
                kind: Kind::Placeholder,
            },
        );
        if p.kind == Kind::Zero {
            // Both halves go back to zero pages, as they were.
            self.commit_zero(pieces, i)?;
            self.commit_zero(pieces, i + 1)?;
        }
        Ok(())
    }

    /// Turns piece `i` back into a placeholder: unmaps a view, frees zero pages.
    fn to_placeholder(&self, pieces: &mut [Piece], i: usize) -> io::Result<()> {
        let p = pieces[i];
        match p.kind {
            Kind::Placeholder => return Ok(()),
            // SAFETY: the piece is a view this reservation mapped at exactly this address, and
            // the caller made sure no one uses its memory now (see map_file and zero_range).
            Kind::View => check(unsafe {
                UnmapViewOfFile2(
                    GetCurrentProcess(),
                    MEMORY_MAPPED_VIEW_ADDRESS {
                        Value: self.addr(p.start),
                    },
                    MEM_PRESERVE_PLACEHOLDER,
                )
            })?,
            // SAFETY: the piece is a private allocation that replaced a placeholder of this
            // reservation, exactly this range; it holds nothing but zeros.
            Kind::Zero => check(unsafe {
                VirtualFree(
                    self.addr(p.start),
                    p.end - p.start,
                    MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
                )
            })?,
        }
        pieces[i].kind = Kind::Placeholder;
        Ok(())
    }

    /// Replaces placeholder `i` with committed private zero pages.
    fn commit_zero(&self, pieces: &mut [Piece], i: usize) -> io::Result<()> {
        let p = pieces[i];
        debug_assert_eq!(p.kind, Kind::Placeholder);
        // SAFETY: the piece is exactly one placeholder of this reservation, which
        // MEM_REPLACE_PLACEHOLDER replaces in place; null process: this process.
        let ptr = unsafe {
            VirtualAlloc2(
                null_mut(),
                self.addr(p.start),
                p.end - p.start,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                PAGE_READWRITE,
                null_mut(),
                0,
            )
        };
        if ptr.is_null() {
            return Err(io::Error::last_os_error());
        }
        pieces[i].kind = Kind::Zero;
        Ok(())
    }

    /// Merges the placeholders that exactly cover `[from, to)` into one.
    fn coalesce(&self, pieces: &mut Vec<Piece>, from: usize, to: usize) -> io::Result<()> {
        let first = index_at(pieces, from);
        let last = pieces
            .iter()
            .position(|p| p.end == to)
            .ok_or_else(|| invalid("no piece ends at the range's end"))?;
        if first == last {
            return Ok(());
        }
        debug_assert!(pieces[first..=last].iter().all(|p| p.kind == Kind::Placeholder));
        // SAFETY: [from, to) is exactly a run of adjacent placeholders of this reservation.
        check(unsafe {
            VirtualFree(
                self.addr(from),
                to - from,
                MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS,
            )
        })?;
        pieces.drain(first + 1..=last);
        pieces[first] = Piece {
            start: from,
            end: to,
            kind: Kind::Placeholder,
        };
        Ok(())
    }

    /// Maps the file over placeholder `i`, at the same offset in the file.
    fn map_view(&self, pieces: &mut [Piece], i: usize, file: &File, mode: MapMode) -> io::Result<()> {
        let p = pieces[i];
        debug_assert_eq!(p.kind, Kind::Placeholder);
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
        // SAFETY: the piece is exactly one placeholder of this reservation, which
        // MEM_REPLACE_PLACEHOLDER replaces with the view; the offset equals the address's
        // offset in the reservation (page-aligned, as placeholder views require).
        let view = unsafe {
            MapViewOfFile3(
                section,
                GetCurrentProcess(),
                self.addr(p.start),
                p.start as u64,
                p.end - p.start,
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
        pieces[i].kind = Kind::View;
        Ok(())
    }
}

/// The index of the piece that starts at `at` (a boundary the caller made).
fn index_at(pieces: &[Piece], at: usize) -> usize {
    pieces.partition_point(|p| p.start < at)
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for p in &st.pieces {
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
