//! Advisory locks (`sys::try_lock`: flock on Unix, a `LockFileEx` range past the data on
//! Windows), and a registry of the locks this process holds, so that ELOCKED can say who the
//! holder is.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Code, Error, Result};

type FileKey = (u64, u64);

static HELD: Mutex<Option<HashMap<FileKey, usize>>> = Mutex::new(None);

/// A lock this process holds on one vec; dropping it forgets it in the registry (the kernel
/// releases the lock itself when the file is closed).
#[derive(Debug)]
pub struct Held {
    key: Option<FileKey>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(map) = held.as_mut() {
                if let Some(n) = map.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&key);
                    }
                }
            }
        }
    }
}

fn held_here(key: Option<FileKey>) -> bool {
    let held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    matches!((held.as_ref(), key), (Some(map), Some(k)) if map.contains_key(&k))
}

/// Takes a shared or exclusive lock on `file`, retrying until `timeout` has passed.
pub fn lock(file: &File, exclusive: bool, timeout: Duration, path: &Path) -> Result<Held> {
    lock_since(file, exclusive, timeout, Instant::now(), path)
}

/// [`lock`], for a wait that began at `start` (an open that retries on a replaced header file).
pub fn lock_since(
    file: &File,
    exclusive: bool,
    timeout: Duration,
    start: Instant,
    path: &Path,
) -> Result<Held> {
    let key = crate::sys::file_id(file).ok();
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = crate::sys::try_lock(file, exclusive);
        match attempt {
            Ok(()) => {
                if let Some(k) = key {
                    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
                    *held.get_or_insert_with(HashMap::new).entry(k).or_insert(0) += 1;
                }
                return Ok(Held { key });
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(locked_error(path, exclusive, timeout, held_here(key)));
                }
                std::thread::sleep(pause.min(timeout - waited));
                pause = (pause * 2).min(Duration::from_millis(25));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(&e, path, "taking the lock"));
            }
        }
    }
}

fn locked_error(path: &Path, exclusive: bool, timeout: Duration, here: bool) -> Error {
    let holder = if here {
        format!(
            "another open handle in this same process (pid {}) holds it; close that handle first (a vec is opened read-write by one handle at a time, even within one process)",
            std::process::id()
        )
    } else {
        "another process holds it (or another handle in this process); close it there".to_string()
    };
    let wanted = if exclusive {
        "read-write (exclusive)"
    } else {
        "readOnly (shared)"
    };
    let waited = if timeout.is_zero() {
        "; pass lockTimeoutMs to wait for it".to_string()
    } else {
        format!(" after waiting {} ms", timeout.as_millis())
    };
    Error::new(
        Code::Locked,
        format!(
            "{}: locked: cannot take the {wanted} lock: {holder}{waited}",
            path.display()
        ),
    )
}

/// Which lock some open file description holds on a vec's header file, as a probe sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Nobody has the vec open.
    Unlocked,
    /// Opened `readOnly` somewhere (one or more holders).
    Shared,
    /// Opened read-write somewhere.
    Exclusive,
}

impl LockState {
    pub fn as_str(self) -> &'static str {
        match self {
            LockState::Unlocked => "none",
            LockState::Shared => "shared",
            LockState::Exclusive => "exclusive",
        }
    }
}

/// Finds out who holds the lock on `file` without waiting and without keeping anything:
/// `file` must be an open file description of its own (flock locks belong to descriptions, so
/// tries on it conflict with every holder, this process's own handles included, and closing it
/// releases only what it took). A shared try tells an exclusive holder apart; an exclusive try
/// then tells a shared holder from none. Each lock taken is released at once, but for that
/// instant an open that does not wait (`lockTimeoutMs: 0`) may fail with ELOCKED. The answer is
/// what was true at the probe; a holder may come or go right after.
pub fn probe(file: &File) -> io::Result<LockState> {
    match crate::sys::try_lock(file, false) {
        Ok(()) => crate::sys::unlock(file)?,
        Err(std::fs::TryLockError::WouldBlock) => return Ok(LockState::Exclusive),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    match crate::sys::try_lock(file, true) {
        Ok(()) => {
            crate::sys::unlock(file)?;
            Ok(LockState::Unlocked)
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(LockState::Shared),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// True when an open handle of this process holds a lock on the file `file` is open on.
pub fn held_in_this_process(file: &File) -> bool {
    held_here(crate::sys::file_id(file).ok())
}
