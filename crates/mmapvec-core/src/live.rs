//! The live file: what a vec's writer publishes for the readers open beside it, and how readers
//! register (docs/DESIGN.md, "Live readers"; the bytes in docs/FORMAT.md).
//!
//! One page in the vec's directory, mapped by the writer read-write and by each reader. The
//! writer publishes the row count inside a sequence lock (odd while a unit of writes is under
//! way), so that a reader never takes a count whose rows are not written yet, and a snapshot
//! never mixes two units. Readers hold a shared lock on the file while they are open; the writer
//! tries an exclusive one before it cuts a file short that a reader may have mapped. The header's
//! own lock stays the writers' alone, so readers and the writer never wait for each other.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::{Code, Error, Result};
use crate::lock::{self, Held};
use crate::sys::{self, FileMap, MapMode};

/// The live file's name inside a vec's directory.
pub const LIVE_FILE: &str = "live";
/// Its size: one page.
pub const LIVE_SIZE: usize = 4096;
pub const MAGIC: [u8; 8] = *b"MVLIVE\0\x01";
/// The sequence counter (u32): odd while the writer writes a unit; the word readers wait on.
pub const OFF_SEQ: usize = 64;
/// Readers waiting on the counter (u32), so that the writer wakes them only when there are any.
pub const OFF_WAITERS: usize = 68;
/// The published row count (f64, like the header's).
pub const OFF_LENGTH: usize = 72;
/// Bumped by each schema change (u32): readers open the new header at their next refresh.
pub const OFF_SCHEMA_GEN: usize = 80;

/// How long a reader waits for a unit of writes to end before it gives up (ELOCKED).
pub const UNIT_WAIT: Duration = Duration::from_secs(2);
/// The least a reader waits for the writer's brief exclusive lock (held while it cuts a file).
const REGISTER_WAIT: Duration = Duration::from_secs(2);
/// How often the writer looks for a waiter count a killed reader left behind.
const STALE_CHECK_MS: u64 = 1000;
/// The longest one futex wait: a waiter whose wake-up was lost (its count reset) looks again.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// What a reader reads of the live file, between two units of writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveState {
    pub seq: u32,
    pub length: u64,
    pub schema_gen: u32,
}

/// A vec's live file, open and mapped.
#[derive(Debug)]
pub struct Live {
    path: PathBuf,
    file: File,
    map: Arc<FileMap>,
    /// Whether the mapping is shared (the writer's, and readers that could open it read-write,
    /// which count themselves as waiters); a private one only follows the file.
    shared: bool,
    /// A reader's registration: the shared lock, released when this is dropped.
    registration: Option<Held>,
    /// When this was opened, and (in milliseconds since) when the writer last looked for a
    /// waiter count left by a killed reader.
    opened: Instant,
    stale_checked: AtomicU64,
}

impl Live {
    /// The writer's live file, made when missing (a vec made by an older mmapvec), and set to
    /// say that the vec has `length` rows. The caller holds the header's lock. Nothing is
    /// written when it says so already: opening and closing a vec changes no file.
    pub fn open_writer(dir: &Path, length: u64) -> Result<Live> {
        let path = dir.join(LIVE_FILE);
        // Never through a symbolic link, and never a file that is not a live file: what is
        // there under that name may be someone's data (a symlink farm, a copy by links).
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
            return Err(not_a_live_file(&path));
        }
        let file = sys::open_live_file(&path).map_err(|e| Error::io(&e, &path, "opening the live file"))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(&e, &path, "opening the live file"))?;
        if !meta.is_file() || (meta.len() != 0 && meta.len() != LIVE_SIZE as u64) {
            return Err(not_a_live_file(&path));
        }
        if meta.len() < LIVE_SIZE as u64 {
            sys::allocate(&file, LIVE_SIZE as u64)
                .map_err(|e| Error::io(&e, &path, "sizing the live file"))?;
        }
        let map = writer_map(&file, &path)?;
        let live = Live {
            path,
            file,
            map,
            shared: true,
            registration: None,
            opened: Instant::now(),
            stale_checked: AtomicU64::new(0),
        };
        if live.magic() != MAGIC {
            // A new file (just sized: zeros), or a live file damaged: every field starts from
            // zero. A page-long file without the magic that holds anything else is not touched.
            let mut page = vec![0u8; LIVE_SIZE];
            live.map.read_bytes(0, &mut page);
            if page.iter().any(|&b| b != 0) && page[..4] != MAGIC[..4] {
                return Err(not_a_live_file(&live.path));
            }
            live.map.write_bytes(0, &[0; LIVE_SIZE]);
            live.map.write_bytes(0, &MAGIC);
        }
        // A writer killed inside a unit left the counter odd: that unit ends here.
        let seq = live.seq().load(Ordering::Acquire);
        if seq & 1 == 1 {
            live.seq().store(seq.wrapping_add(1), Ordering::Release);
        }
        live.publish(length);
        Ok(live)
    }

    /// A reader's live file, registered (a shared lock on it until dropped); None when the vec
    /// has none (no writer of this mmapvec has opened it yet). Opened read-write when the
    /// process may, so that it counts itself among the waiters; read-only otherwise.
    pub fn open_reader(dir: &Path, lock_timeout: Duration) -> Result<Option<Live>> {
        let path = dir.join(LIVE_FILE);
        let (file, shared) = match sys::open_file(&path, true, false) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(_) => match sys::open_file(&path, false, false) {
                Ok(f) => (f, false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(&e, &path, "opening the live file")),
            },
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io(&e, &path, "opening the live file"))?;
        // Not yet sized by its writer (it is making it now), or not ours: as if absent.
        if !meta.is_file() || meta.len() < LIVE_SIZE as u64 {
            return Ok(None);
        }
        let registration = lock::lock(&file, false, lock_timeout.max(REGISTER_WAIT), &path)?;
        let mode = if shared { MapMode::Shared } else { MapMode::Private };
        let map = FileMap::new(&file, LIVE_SIZE, mode)
            .map_err(|e| Error::io(&e, &path, "mapping the live file"))?;
        let live = Live {
            path,
            file,
            map: Arc::new(map),
            shared,
            registration: Some(registration),
            opened: Instant::now(),
            stale_checked: AtomicU64::new(0),
        };
        Ok((live.magic() == MAGIC).then_some(live))
    }

    fn magic(&self) -> [u8; 8] {
        let mut m = [0u8; 8];
        self.map.read_bytes(0, &mut m);
        m
    }

    fn seq(&self) -> &std::sync::atomic::AtomicU32 {
        self.map.atomic_u32(OFF_SEQ)
    }

    /// The mapping, for the binding to hand to JavaScript (the writer's `Atomics` publish).
    pub fn map(&self) -> &Arc<FileMap> {
        &self.map
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether the mapping has faulted (the file was cut short under it).
    pub fn faulted(&self) -> bool {
        self.map.faulted()
    }

    /// Runs `f` as one unit of writes: the counter is odd meanwhile (unless a unit JavaScript
    /// began is already under way, which this joins), and readers are woken after.
    fn unit(&self, f: impl FnOnce(&Live)) {
        let seq = self.seq();
        let s = seq.load(Ordering::Relaxed);
        if s & 1 == 1 {
            f(self);
            return;
        }
        seq.store(s.wrapping_add(1), Ordering::Relaxed);
        // The odd count is seen before any of the unit's stores.
        std::sync::atomic::fence(Ordering::Release);
        f(self);
        seq.store(s.wrapping_add(2), Ordering::Release);
        self.wake();
    }

    /// Begins a unit of writes (the counter goes odd) unless one is under way.
    pub fn begin_unit(&self) {
        let seq = self.seq();
        let s = seq.load(Ordering::Relaxed);
        if s & 1 == 0 {
            seq.store(s.wrapping_add(1), Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Release);
        }
    }

    /// Ends the unit under way, if any, publishing `length` rows, and wakes the readers.
    pub fn end_unit(&self, length: u64) {
        self.map.write_f64(OFF_LENGTH, length as f64);
        let seq = self.seq();
        let s = seq.load(Ordering::Relaxed);
        if s & 1 == 1 {
            seq.store(s.wrapping_add(1), Ordering::Release);
        }
        self.wake();
    }

    /// Publishes `length` rows (the writer's; its rows are written). Nothing is written when
    /// that is what the file says already.
    pub fn publish(&self, length: u64) {
        if self.map.read_f64(OFF_LENGTH) == length as f64 && self.seq().load(Ordering::Relaxed) & 1 == 0 {
            return;
        }
        self.unit(|l| l.map.write_f64(OFF_LENGTH, length as f64));
    }

    /// Publishes a schema change: readers open the new header at their next refresh.
    pub fn publish_schema_change(&self, length: u64) {
        self.unit(|l| {
            let g = l.map.atomic_u32(OFF_SCHEMA_GEN);
            g.store(g.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            l.map.write_f64(OFF_LENGTH, length as f64);
        });
    }

    /// The writer's last word: `length` rows.
    pub fn close_writer(&self, length: u64) {
        self.publish(length);
    }

    /// Wakes the readers waiting for a change, if any.
    pub fn wake(&self) {
        let waiters = self.map.atomic_u32(OFF_WAITERS);
        if waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        sys::futex_wake(self.seq());
        // A reader killed while it waited left its count behind. With no reader registered
        // (the exclusive try succeeds, and keeps one from registering meanwhile), nobody can
        // be waiting: the count goes back to zero. Checked at most once a second.
        let now = self.opened.elapsed().as_millis() as u64;
        let due = self.stale_checked.load(Ordering::Relaxed) + STALE_CHECK_MS;
        if now >= due
            && self.stale_checked.swap(now, Ordering::Relaxed) < now
            && !self.is_reader()
            && sys::try_lock(&self.file, true).is_ok()
        {
            waiters.store(0, Ordering::SeqCst);
            let _ = sys::unlock(&self.file);
        }
    }

    /// Runs `cut` (which shrinks files) only when no reader is registered, keeping readers from
    /// registering meanwhile; returns None, without running it, when one is.
    pub fn without_readers<T>(&self, cut: impl FnOnce() -> T) -> Option<T> {
        match sys::try_lock(&self.file, true) {
            Ok(()) => {
                let r = cut();
                let _ = sys::unlock(&self.file);
                Some(r)
            }
            Err(_) => None,
        }
    }

    /// One consistent read of the published state, or None while a unit is under way or when
    /// one ended during the read.
    fn read_once(&self) -> Option<LiveState> {
        let s1 = self.seq().load(Ordering::Acquire);
        if s1 & 1 == 1 {
            return None;
        }
        let raw = self.map.read_f64(OFF_LENGTH);
        let schema_gen = self.map.atomic_u32(OFF_SCHEMA_GEN).load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if self.seq().load(Ordering::Relaxed) != s1 {
            return None;
        }
        let length = if raw.is_finite() && raw >= 0.0 && raw.fract() == 0.0 && raw < 2f64.powi(53) {
            raw as u64
        } else {
            0
        };
        Some(LiveState {
            seq: s1,
            length,
            schema_gen,
        })
    }

    /// The published state between two units, waiting up to `wait` for one under way to end;
    /// Err(the counter) when it did not (the writer is in a long batch, or was killed in one).
    pub fn state(&self, wait: Duration) -> std::result::Result<LiveState, u32> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if let Some(s) = self.read_once() {
                return Ok(s);
            }
            if start.elapsed() >= wait {
                return Err(self.seq().load(Ordering::Acquire));
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if spins < 256 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// The schema generation as it is now (see [`OFF_SCHEMA_GEN`]).
    pub fn schema_gen(&self) -> u32 {
        self.map.atomic_u32(OFF_SCHEMA_GEN).load(Ordering::Acquire)
    }

    /// The counter as it is now (odd while a unit is under way).
    pub fn current_seq(&self) -> u32 {
        self.seq().load(Ordering::Acquire)
    }

    /// Whether a unit has begun or ended since the counter read `seq`.
    pub fn changed_since(&self, seq: u32) -> bool {
        self.current_seq() != seq
    }

    /// Waits until the counter moves on from `seq` (true) or `timeout` passes (false), without
    /// spinning: a futex on Linux, a 1 ms poll elsewhere. `cancel` ends the wait early (false).
    pub fn wait_change(&self, seq: u32, timeout: Duration, cancel: &AtomicBool) -> bool {
        let start = Instant::now();
        let waiters = self.map.atomic_u32(OFF_WAITERS);
        loop {
            if self.changed_since(seq) {
                return true;
            }
            if cancel.load(Ordering::Acquire) {
                return false;
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            if self.shared {
                waiters.fetch_add(1, Ordering::SeqCst);
                // Seen after the count went up: a writer that published before it cannot have
                // missed this waiter, since the counter then already moved.
                if !self.changed_since(seq) {
                    sys::futex_wait(self.seq(), seq, left.min(WAIT_SLICE));
                }
                let _ = waiters.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            } else {
                std::thread::sleep(left.min(Duration::from_millis(1)));
            }
        }
    }

    /// Wakes this process's own waiters on the counter (a reader closing under a wait).
    pub fn wake_all(&self) {
        sys::futex_wake(self.seq());
    }

    /// The live file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a reader's registration (else the writer's file).
    pub fn is_reader(&self) -> bool {
        self.registration.is_some()
    }
}

fn not_a_live_file(path: &Path) -> Error {
    Error::new(
        Code::Format,
        format!(
            "{}: is not a live file (a regular file of {LIVE_SIZE} bytes that a writer made); nothing was changed in it. Move it out of the vec's directory, and readers beside a writer will follow it again",
            path.display()
        ),
    )
}

/// The writer's mappings of live files that are still mapped, by file: a mapping lives as long
/// as JavaScript's view of it (until it is collected), and a program that opens and closes a
/// vec thousands of times between two collections would otherwise use up the process's
/// mappings (`vm.max_map_count`). A writer opening the same file again takes the same mapping.
static WRITER_MAPS: Mutex<Vec<(FileKey, Weak<FileMap>)>> = Mutex::new(Vec::new());

/// A file's device and inode (`sys::file_id`).
type FileKey = (u64, u64);

fn writer_map(file: &File, path: &Path) -> Result<Arc<FileMap>> {
    let id = sys::file_id(file).ok();
    let mut maps = WRITER_MAPS.lock().unwrap_or_else(|e| e.into_inner());
    maps.retain(|(_, m)| m.strong_count() > 0);
    if let Some(m) = id
        .and_then(|id| maps.iter().find(|(k, _)| *k == id))
        .and_then(|(_, m)| m.upgrade())
    {
        return Ok(m);
    }
    let map = Arc::new(
        FileMap::new(file, LIVE_SIZE, MapMode::Shared)
            .map_err(|e| Error::io(&e, path, "mapping the live file"))?,
    );
    if let Some(id) = id {
        maps.push((id, Arc::downgrade(&map)));
    }
    Ok(map)
}

/// Whether some reader has the vec at `dir` open (probes its live file's lock; a registration
/// in progress may see ELOCKED's brief wait). False when there is no live file.
pub fn readers_present(dir: &Path) -> io::Result<bool> {
    let file = match sys::open_file(&dir.join(LIVE_FILE), false, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(lock::probe(&file)? == lock::LockState::Shared)
}
