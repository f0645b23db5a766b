//! Unix: a SIGBUS guard over the file mappings, so that a file another program truncated under
//! an open vec (or a write into a sparse page on a full disk) damages the vec instead of
//! killing the process.
//!
//! Touching a page of a shared file mapping that lies past the end of the file raises SIGBUS.
//! Every mapping of a file this crate makes registers its range here ([`Guard`]). The first
//! guard installs one process-wide handler, chained to whatever handler was there before. On a
//! SIGBUS inside a registered range, the handler puts private zero pages over the range from
//! the faulting page to its end (`MAP_FIXED`, the technique LMDB users and Harper's rocksdb-js
//! use), counts the fault on the guard and returns: the faulting access runs again and reads
//! or writes a zero page. The owner of the guard sees the count ([`Guard::faulted`]) and fails
//! its next call with `EIO`. A SIGBUS anywhere else goes to the previous handler untouched, or,
//! when there was none, kills the process as it would have without this module.
//!
//! V8 uses SIGSEGV (not SIGBUS) for WebAssembly's out-of-bounds traps on Linux, and Node
//! installs no SIGBUS handler; on macOS V8's trap handler uses SIGBUS and was installed before
//! any addon loads, so it is the previous handler this one chains to.
//!
//! ## Safety rules
//! - The registry is a fixed table of atomics: the handler takes no lock, allocates nothing and
//!   calls only `mmap`, `sigaction` and `raise`, which are system calls.
//! - A guard is registered by the owner of a mapping for as long as it owns the range, and
//!   dropped before the range is unmapped (a [`Guard`] is a field of the owner, dropped first).
//!   The handler only replaces pages inside a registered range with zero pages, which the owner
//!   allows: a damaged range is never handed to anyone else.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::page_size;

/// How many mappings can be guarded at once (a vec has one per column and one for its header;
/// a column's old reservation lives on while views of it do). Past it, new mappings are not
/// guarded, as before this module existed. 32 bytes each, in zeroed static memory that costs
/// nothing until used.
const SLOTS: usize = 1 << 14;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const ACTIVE: u32 = 2;

struct Slot {
    state: AtomicU32,
    /// Faults the handler caught in the range.
    faults: AtomicU32,
    start: AtomicUsize,
    /// The end of the part that may hold file pages; the handler zeroes up to it.
    end: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicU32::new(FREE),
    faults: AtomicU32::new(0),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// One past the highest slot ever claimed: the handler scans no further.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// Where claiming starts looking (the slot after the last one claimed).
static HINT: AtomicUsize = AtomicUsize::new(0);
/// The page size, read by the handler (which must not initialise anything itself).
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// The action SIGBUS had before ours, for the faults that are not ours: a leaked, never-freed
/// `sigaction` (one per time the handler had to be put back, see [`ensure_installed`]), or null
/// when there was none to keep. The handler reads it with one atomic load.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
/// Serialises installing (never taken by the handler).
static INSTALLING: Mutex<()> = Mutex::new(());

/// Whether the handler was installed (once per process; [`ensure_installed`] puts it back when
/// something replaced it). Cheap after the first call: an open makes a guard per file.
fn installed() -> bool {
    static ONCE: AtomicU32 = AtomicU32::new(0);
    match ONCE.load(Ordering::Acquire) {
        1 => true,
        _ if ensure_installed() => {
            ONCE.store(1, Ordering::Release);
            true
        }
        _ => false,
    }
}

/// Makes sure the handler is SIGBUS's action: installs it the first time, and again whenever
/// something replaced it since (Node does, while a program listens with `process.on('SIGBUS')`,
/// and puts the default back when it stops listening), keeping what it finds as the previous
/// action. False when sigaction failed, and then mappings stay unguarded.
pub fn ensure_installed() -> bool {
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    PAGE.store(page_size(), Ordering::Relaxed);
    // SAFETY: sigaction with zeroed, properly sized structs; the new action's handler is
    // `on_sigbus`, an extern "C" function with the SA_SIGINFO signature.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut current) != 0 {
            return false;
        }
        if current.sa_sigaction == on_sigbus as *const () as libc::sighandler_t {
            return true;
        }
        // Kept before ours can run, and never freed: a handler on another thread may be
        // reading the one it replaces.
        PREVIOUS.store(Box::into_raw(Box::new(current)), Ordering::Release);
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut new.sa_mask);
        libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) == 0
    }
}

/// A registered range of a file mapping. Dropping it (or [`release`](Self::release))
/// unregisters the range.
#[derive(Debug)]
pub struct Guard {
    /// The slot in the table, or `SLOTS` when the range is unguarded (the table was full, or
    /// the guard was released).
    slot: AtomicUsize,
}

impl Guard {
    /// Guards `[base, base + len)`: the part of a mapping that may hold a file's pages.
    pub fn new(base: *mut u8, len: usize) -> Guard {
        let unguarded = Guard {
            slot: AtomicUsize::new(SLOTS),
        };
        if !installed() {
            return unguarded;
        }
        let hint = HINT.load(Ordering::Relaxed);
        for k in 0..SLOTS {
            let i = (hint + k) % SLOTS;
            let s = &TABLE[i];
            if s.state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                s.faults.store(0, Ordering::Relaxed);
                s.start.store(base as usize, Ordering::Relaxed);
                s.end.store(base as usize + len, Ordering::Relaxed);
                HIGH.fetch_max(i + 1, Ordering::AcqRel);
                s.state.store(ACTIVE, Ordering::Release);
                HINT.store(i + 1, Ordering::Relaxed);
                return Guard {
                    slot: AtomicUsize::new(i),
                };
            }
        }
        unguarded
    }

    fn entry(&self) -> Option<&'static Slot> {
        TABLE.get(self.slot.load(Ordering::Acquire))
    }

    /// Moves the end of the guarded range: the mapping now holds the file up to `base + len`.
    /// Pages past the end of a mapping that shrank are zero pages, which cannot fault, so the
    /// end only moves up.
    pub fn set_len(&self, len: usize) {
        if let Some(s) = self.entry() {
            let start = s.start.load(Ordering::Relaxed);
            s.end.fetch_max(start + len, Ordering::AcqRel);
        }
    }

    /// Whether a fault in the range was caught: from its first page on, the range holds zero
    /// pages instead of the file.
    pub fn faulted(&self) -> bool {
        self.entry().is_some_and(|s| s.faults.load(Ordering::Acquire) > 0)
    }

    /// Whether the range is guarded at all (false when the table was full, or once released).
    pub fn is_active(&self) -> bool {
        self.entry().is_some()
    }

    /// Gives the slot back before the mapping goes: for a mapping nothing will touch again (a
    /// closed vec's, whose views are detached or hold zero pages, lives on until V8 collects
    /// the views). A vec opened and closed in a loop would otherwise fill the table.
    pub fn release(&self) {
        if let Some(s) = TABLE.get(self.slot.swap(SLOTS, Ordering::AcqRel)) {
            s.state.store(FREE, Ordering::Release);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.release();
    }
}

/// The process-wide SIGBUS handler (see the module's documentation).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a handler installed with SA_SIGINFO.
    let addr = unsafe { fault_address(info) };
    let page = PAGE.load(Ordering::Relaxed).max(1);
    let high = HIGH.load(Ordering::Acquire).min(SLOTS);
    for s in &TABLE[..high] {
        if s.state.load(Ordering::Acquire) != ACTIVE {
            continue;
        }
        let start = s.start.load(Ordering::Relaxed);
        let end = s.end.load(Ordering::Acquire);
        if addr < start || addr >= end {
            continue;
        }
        let from = addr / page * page;
        // SAFETY: `[from, end)` lies inside a range whose owner registered it for exactly this
        // (module rules); MAP_FIXED replaces only those pages. errno is saved and restored, as
        // the interrupted code may be about to read it.
        let ok = unsafe {
            let errno = errno_location();
            let saved = *errno;
            let p = libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            );
            *errno = saved;
            p != libc::MAP_FAILED
        };
        if ok {
            s.faults.fetch_add(1, Ordering::AcqRel);
            return;
        }
        break;
    }
    // SAFETY: forwarding the signal the kernel gave us, with its own arguments.
    unsafe { chain(sig, info, ctx) }
}

/// Hands a SIGBUS that is not ours to the previous action.
///
/// # Safety
/// Only from the signal handler, with the arguments the kernel passed to it.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: PREVIOUS is null or a leaked sigaction that is never freed.
    let previous = unsafe { PREVIOUS.load(Ordering::Acquire).as_ref() };
    let handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: the kernel's siginfo, as the caller guarantees.
        let sent = unsafe { (*info).si_code } <= 0;
        if handler == libc::SIG_IGN && sent {
            return; // a SIGBUS sent by kill(), which the program chose to ignore
        }
        // Back to the default action, then let it happen: a fault re-runs the faulting access
        // when the handler returns, and a signal sent by kill() is sent again.
        // SAFETY: sigaction and raise are async-signal-safe; the struct is zeroed and complete.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            if sent {
                libc::raise(sig);
            }
        }
        return;
    }
    let flags = previous.map_or(0, |p| p.sa_flags);
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action was installed with SA_SIGINFO, so its handler has this
        // signature; it gets the kernel's own arguments.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        }
    } else {
        // SAFETY: a plain handler, installed without SA_SIGINFO, takes the signal number only.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

/// The faulting address of a SIGBUS.
///
/// # Safety
/// `info` must be the siginfo the kernel passed to a SA_SIGINFO handler.
unsafe fn fault_address(info: *mut libc::siginfo_t) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: as the caller guarantees; for SIGBUS the union holds the fault fields.
    let addr = unsafe { (*info).si_addr() };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as the caller guarantees.
    let addr = unsafe { (*info).si_addr };
    addr as usize
}

/// errno of the calling thread.
///
/// # Safety
/// The pointer is valid for the calling thread only.
unsafe fn errno_location() -> *mut libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: libc's function for the calling thread's errno.
    return unsafe { libc::__errno_location() };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as above, macOS's (and FreeBSD's) name for it.
    return unsafe { libc::__error() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_claim_distinct_slots_and_free_them() {
        let mut a = [0u8; 8];
        let g1 = Guard::new(a.as_mut_ptr(), 8);
        let g2 = Guard::new(a.as_mut_ptr(), 8);
        assert!(g1.is_active() && g2.is_active());
        let (s1, s2) = (g1.slot.load(Ordering::Relaxed), g2.slot.load(Ordering::Relaxed));
        assert_ne!(s1, s2);
        assert!(!g1.faulted());
        g2.release();
        assert!(!g2.is_active());
        assert_eq!(TABLE[s2].state.load(Ordering::Relaxed), FREE);
        drop(g1);
        assert_eq!(TABLE[s1].state.load(Ordering::Relaxed), FREE);
    }
}
