//! Telling whether a vec changed while it was read from outside, for [`crate::inspect::verify`].
//!
//! `verify` takes no lock, so a writer in another process may change the vec while the checks
//! read it: a schema change renames a new header file over the old one and makes or deletes a
//! column file, a push moves the row count and grows the column files, a shrink cuts them. What
//! the checks see then mixes two states of the vec, which can look like damage (a column file
//! the header names but the writer just deleted, a row count from before a shrink held against
//! a file from after it, a file that ends while it is read). A damaged vec does not change by
//! itself, so problems found while nothing changed are real; problems found while the vec
//! changed may not be, and the check is run again.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::path::Path;
use std::thread;
use std::time::Duration;

use crate::error::{Code, Error, Result};
use crate::header;
use crate::header::HEADER_FILE;
use crate::sys;

/// How many times a check runs while the vec keeps changing under it.
pub const TRIES: u32 = 20;
/// The pause between two tries, for the writer to finish what it is doing.
const PAUSE: Duration = Duration::from_millis(10);

/// What a change to a file or directory changes: its kind and mode, identity (device, inode),
/// size, and, in the last four, modification and status-change times to the nanosecond.
/// (`ftruncate`, `fallocate`, writes, renames and deletions move those.)
#[cfg(unix)]
fn stamp(m: &Metadata) -> [i64; 8] {
    use std::os::unix::fs::MetadataExt;
    [
        m.mode() as i64,
        m.dev() as i64,
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ]
}

/// As on Unix, less the identity, which only a handle gives (the header's content stands in
/// for it; `verify` beside a writer is not expected to work on Windows anyway).
#[cfg(windows)]
fn stamp(m: &Metadata) -> [i64; 8] {
    use std::os::windows::fs::MetadataExt;
    [
        m.file_attributes() as i64,
        0,
        0,
        m.file_size() as i64,
        m.last_write_time() as i64,
        m.creation_time() as i64,
        0,
        0,
    ]
}

/// The stamp of a directory entry: without its times unless it is a regular file or a
/// directory, which are all a writer makes. A device or a FIFO where a column file should be
/// (damage, which a check reports) may have its times moved by whoever uses it (a terminal's
/// change with every keystroke), and must not make a damaged vec look like one being written.
fn entry_stamp(m: &Metadata) -> [i64; 8] {
    let mut s = stamp(m);
    if !m.is_file() && !m.is_dir() {
        s[4..].fill(0);
    }
    s
}

/// What a writer changes in a vec's directory, as seen from outside at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The directory itself (its times move when an entry is made, renamed or deleted).
    dir: Option<[i64; 8]>,
    /// Every entry by name, sorted, with the stamp of what it leads to (`None` when that
    /// cannot be read, e.g. a dangling link).
    entries: Option<Vec<(OsString, Option<[i64; 8]>)>>,
    /// The header file's bytes (the row count among them), read through `_pin`.
    header: Option<Vec<u8>>,
    /// The header file as found, held open until the snapshot is dropped: while it is open its
    /// inode cannot be freed, so a header renamed over it and another renamed over that cannot
    /// get its inode number back and pass for it.
    _pin: Option<File>,
}

impl Snapshot {
    /// Reads the state of the vec at `path`; what cannot be read counts as such, never fails.
    pub(crate) fn take(path: &Path) -> Snapshot {
        let dir = fs::metadata(path).ok().map(|m| stamp(&m));
        let entries = fs::read_dir(path).ok().map(|read| {
            let mut entries: Vec<(OsString, Option<[i64; 8]>)> = read
                .filter_map(|e| e.ok())
                .map(|e| {
                    (
                        e.file_name(),
                        fs::metadata(e.path()).ok().map(|m| entry_stamp(&m)),
                    )
                })
                .collect();
            entries.sort();
            entries
        });
        let hp = path.join(HEADER_FILE);
        // Never opened unless it is a regular file (a FIFO there would not block: O_NONBLOCK).
        let pin = sys::open_file(&hp, false, false)
            .ok()
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
        let header = pin
            .as_ref()
            .and_then(|f| header::read_bytes(f, &hp).ok())
            .map(|(b, _)| b);
        Snapshot {
            dir,
            entries,
            header,
            _pin: pin,
        }
    }

    /// Whether the vec at `path` is as it was when this snapshot was taken.
    pub(crate) fn unchanged(&self, path: &Path) -> bool {
        let now = Snapshot::take(path);
        self.dir == now.dir && self.entries == now.entries && self.header == now.header
    }
}

/// Runs `check` on the vec at `path` until what it finds can be trusted, and returns that:
/// at once when it finds nothing, or when nothing changed in the vec while it ran; otherwise it
/// runs again, up to [`TRIES`] times, and then fails with ELOCKED (a writer kept changing the
/// vec). An error of `check` is returned at once.
pub(crate) fn settled<P>(path: &Path, mut check: impl FnMut(&Path) -> Result<Vec<P>>) -> Result<Vec<P>> {
    for n in 0..TRIES {
        if n > 0 {
            thread::sleep(PAUSE);
        }
        let before = Snapshot::take(path);
        let problems = check(path)?;
        if problems.is_empty() || before.unchanged(path) {
            return Ok(problems);
        }
    }
    Err(Error::new(
        Code::Locked,
        format!(
            "{}: the vec kept changing while it was checked ({TRIES} checks in a row, each of which saw another process change its header or files): a writer has it open read-write; run verify again when that writer is idle or has closed the vec",
            path.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{verify_once, Problem};
    use crate::schema::{ElemType, Schema};
    use crate::vec::{MmapVec, OpenOptions};
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmapvec-settle-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("v.mvec")
    }

    fn make(path: &Path) -> MmapVec {
        let s = Schema::parse_request(
            r#"{"scalar":false,"columns":[{"name":"x","type":"f64","count":1},{"name":"ok","type":"bool","count":1}]}"#,
        )
        .unwrap();
        let mut v = MmapVec::open(path, &s, &OpenOptions::default()).unwrap();
        v.grow(10, false).unwrap();
        v.set_len(3).unwrap();
        v
    }

    /// Writes 2 into row 1 of the bool column (its rows start at byte 64), through the file:
    /// damage that opening does not look for, so a writer can hold the vec open meanwhile.
    fn damage(path: &Path) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(path.join("c1.col"))
            .unwrap();
        f.seek(SeekFrom::Start(64 + 1)).unwrap();
        f.write_all(&[2]).unwrap();
    }

    #[test]
    fn every_change_a_writer_makes_is_seen() {
        let p = scratch("changes");
        let mut v = make(&p);
        let same = |s: &Snapshot| s.unchanged(&p);
        let s = Snapshot::take(&p);
        assert!(same(&s), "nothing changed");
        v.set_len(4).unwrap();
        assert!(!same(&s), "a push (the row count)");
        let s = Snapshot::take(&p);
        v.grow(5000, false).unwrap();
        assert!(!same(&s), "a growth");
        let s = Snapshot::take(&p);
        v.set_len(1).unwrap();
        v.shrink_to_fit().unwrap();
        v.set_len(4).unwrap();
        assert!(!same(&s), "a shrink, the row count back where it was");
        let s = Snapshot::take(&p);
        v.add_column("y", ElemType::U16, 1).unwrap();
        assert!(!same(&s), "a new column");
        let s = Snapshot::take(&p);
        v.drop_column("y").unwrap();
        assert!(!same(&s), "a column dropped");
        let s = Snapshot::take(&p);
        v.add_column("y", ElemType::U16, 1).unwrap();
        v.drop_column("y").unwrap();
        assert!(!same(&s), "a column added and dropped again");
        let s = Snapshot::take(&p);
        fs::write(p.join("stray"), b"").unwrap();
        assert!(!same(&s), "a file made");
        let s = Snapshot::take(&p);
        let touch = |f: &Path| {
            let later = std::time::SystemTime::now() + Duration::from_secs(60);
            // Read-only and non-blocking: a FIFO opens without a writer.
            let f = sys::open_file(f, false, false).unwrap();
            f.set_times(fs::FileTimes::new().set_modified(later)).unwrap();
        };
        touch(&p.join("stray"));
        assert!(!same(&s), "a file's mtime moved");
        drop(v);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    /// A FIFO in place of a column file is damage; whoever writes into it moves its times,
    /// which must not pass for a writer changing the vec.
    #[cfg(unix)]
    #[test]
    fn the_times_of_a_fifo_where_a_column_file_should_be_do_not_count() {
        let p = scratch("fifo");
        drop(make(&p));
        let c1 = p.join("c1.col");
        fs::remove_file(&c1).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&c1).status().unwrap();
        assert!(made.success());
        let s = Snapshot::take(&p);
        let f = sys::open_file(&c1, false, false).unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(60);
        f.set_times(fs::FileTimes::new().set_modified(later)).unwrap();
        assert!(s.unchanged(&p));
        let checks: Vec<&str> = crate::inspect::verify(&p)
            .unwrap()
            .iter()
            .map(|q| q.check)
            .collect();
        assert_eq!(checks, ["column-file"]);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_damaged_vec_nobody_changes_is_reported_after_one_check() {
        let p = scratch("damaged");
        drop(make(&p));
        damage(&p);
        let mut runs = 0;
        let problems = settled(&p, |p| {
            runs += 1;
            verify_once(p)
        })
        .unwrap();
        assert_eq!(runs, 1);
        let checks: Vec<&str> = problems.iter().map(|q| q.check).collect();
        assert_eq!(checks, ["bool-value"]);
        // Also beside a writer that holds it open and changes nothing.
        let v = MmapVec::open_stored(&p, &OpenOptions::default()).unwrap();
        assert_eq!(crate::inspect::verify(&p).unwrap(), problems);
        drop(v);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn problems_seen_while_the_vec_changed_are_checked_again() {
        let p = scratch("changed");
        let mut v = make(&p);
        // A check that meets a change once, and sees a false problem then.
        let mut runs = 0u64;
        let problems = settled(&p, |p| {
            runs += 1;
            if runs > 1 {
                return verify_once(p);
            }
            v.set_len(5).unwrap();
            Ok(vec![Problem::new(
                "column-file",
                Error::new(Code::Format, "a column file the writer just deleted"),
            )])
        })
        .unwrap();
        assert_eq!((runs, problems.len()), (2, 0));
        // A real problem that a change hid from no check: still reported, after the change.
        damage(&p);
        let mut runs = 0u64;
        let problems = settled(&p, |p| {
            runs += 1;
            let found = verify_once(p);
            if runs == 1 {
                v.set_len(2).unwrap();
            }
            found
        })
        .unwrap();
        assert_eq!(runs, 2);
        assert_eq!(
            problems.iter().map(|q| q.check).collect::<Vec<_>>(),
            ["bool-value"]
        );
        drop(v);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_vec_that_keeps_changing_is_elocked_naming_the_path() {
        let p = scratch("changing");
        let mut v = make(&p);
        let mut runs = 0u64;
        let e = settled(&p, |_| -> Result<Vec<Problem>> {
            runs += 1;
            v.set_len(runs % 3 + 1).unwrap();
            Ok(vec![Problem::new(
                "capacity",
                Error::new(Code::Format, "seen mid-change"),
            )])
        })
        .unwrap_err();
        assert_eq!(runs, TRIES as u64);
        assert_eq!(e.code, Code::Locked);
        assert!(e.message.starts_with(&p.display().to_string()), "{e}");
        assert!(
            e.message.contains("run verify again when that writer is idle"),
            "{e}"
        );
        drop(v);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }
}
