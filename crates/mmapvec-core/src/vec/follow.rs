//! A reader beside the writer: opening without the writer's lock, and following what the writer
//! publishes in the live file (the row count, growth, schema changes) when the program asks
//! (`refresh`, `snapshot`). docs/DESIGN.md, "Live readers", says what a reader sees and when.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dir;
use crate::error::{Code, Error, Result};
use crate::header::{self, HEADER_FILE};
use crate::live::{Live, UNIT_WAIT};
use crate::lock::{self, LockState};
use crate::schema::Schema;
use crate::sys;

use super::{Growth, MmapVec, OpenOptions};

/// How long a reader waits for a unit to end before it asks whether the writer is gone.
const UNIT_SHORT_WAIT: Duration = Duration::from_millis(10);

/// How often a reader may probe the header's lock to learn that a writer which never closed
/// is gone (each probe takes a shared lock for an instant).
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// What a reader has taken of the writer's state.
#[derive(Debug, Default)]
pub(super) struct Follow {
    /// The row count the program sees.
    pub(super) length: u64,
    /// The capacity the program was last told of.
    capacity: u64,
    schema_gen: u32,
    /// The live file's counter at the last refresh.
    seen_seq: u32,
    /// Columns that moved to a new reservation since the last refresh (a snapshot may map).
    moved: Vec<usize>,
    /// The counter at which the writer was found gone without closing (killed): from then on,
    /// until it moves, the header's count is the truth.
    gone_at: Option<u32>,
    probed: Option<Instant>,
}

/// What a reader's refresh found.
#[derive(Debug, PartialEq, Eq)]
pub enum Followed {
    /// Nothing changed.
    Same,
    /// The row count or the capacity changed; `moved` columns have new memory, and `views`
    /// says whether the program's views must be made anew (the capacity it was last told of
    /// changed, or a column moved; a snapshot may have mapped a growth since).
    Changed { moved: Growth, views: bool },
    /// The writer changed the schema: open the vec again to follow it.
    Reshaped,
}

/// Whether the header file at `path` is no longer the one `file` is open on.
fn header_replaced(path: &Path, file: &File) -> bool {
    let now = sys::path_id(&path.join(HEADER_FILE)).ok();
    now.is_none() || now != sys::file_id(file).ok()
}

/// Opens the vec at `path` for reading beside whatever writer has it open: the header's lock
/// is the writer's alone; a reader registers in the live file instead.
pub(super) fn open_reader(path: &Path, schema: Option<&Schema>, opts: &OpenOptions) -> Result<MmapVec> {
    for _ in 0..100 {
        // Registered before anything is mapped: the writer cuts no file under a registered reader.
        let live = Live::open_reader(path, opts.lock_timeout)?;
        let gen = live.as_ref().map(|l| l.schema_gen());
        let header_file = dir::open_header_file(path, false)?;
        // A schema change that raced this open (a column file it named is gone, say) shows as
        // a replaced header: open again.
        let files = match MmapVec::check_stored(path, &header_file, schema, opts, false) {
            Err(_) if header_replaced(path, &header_file) => continue,
            r => r?,
        };
        let mut v = match MmapVec::assemble(path, header_file, None, files, true, false, opts) {
            Err(_) if header_replaced(path, &dir::open_header_file(path, false)?) => continue,
            r => r?,
        };
        v.follow.schema_gen = gen.unwrap_or(0);
        v.follow.capacity = v.capacity;
        v.live = live.map(Arc::new);
        match v.follow()? {
            Followed::Reshaped => continue,
            _ => return Ok(v),
        }
    }
    Err(Error::new(
        Code::Io,
        format!(
            "{}: the schema changed a hundred times while this reader opened it; is a writer changing it in a loop?",
            path.display()
        ),
    ))
}

impl MmapVec {
    /// A reader's refresh: takes the writer's latest published state (the row count, what the
    /// files grew to, a schema change). A writer's handle has nothing to follow (`Same`).
    pub fn follow(&mut self) -> Result<Followed> {
        if !self.read_only {
            return Ok(Followed::Same);
        }
        self.intact()?;
        let Some((length, seq)) = self.published()? else {
            return Ok(Followed::Reshaped);
        };
        let mut growth = self.follow_files(length)?;
        growth.moved.splice(0..0, self.follow.moved.drain(..));
        growth.moved.sort_unstable();
        growth.moved.dedup();
        // Files shorter than the count are damage: the reader sees only the rows they hold.
        let length = length.min(self.capacity);
        let views = self.capacity != self.follow.capacity || !growth.moved.is_empty();
        // A unit that changed only rows in place (a batch of sets) moves just the counter:
        // a change all the same (buffered readers copy the rows again).
        let changed = views || length != self.follow.length || seq != self.follow.seen_seq;
        self.follow.length = length;
        self.follow.capacity = self.capacity;
        self.follow.seen_seq = seq;
        Ok(if changed {
            Followed::Changed { moved: growth, views }
        } else {
            Followed::Same
        })
    }

    /// For a snapshot: the state between two of the writer's units, as (counter, row count),
    /// with the rows mapped; None when the schema changed (refresh first). A writer's handle
    /// gives its own count. Check [`snapshot_still`](Self::snapshot_still) after copying.
    pub fn snapshot_state(&mut self) -> Result<Option<(u32, u64)>> {
        self.intact()?;
        if !self.read_only {
            return Ok(Some((0, self.len())));
        }
        let Some((length, seq)) = self.published()? else {
            return Ok(None);
        };
        let growth = self.follow_files(length)?;
        self.follow.moved.extend(growth.moved);
        Ok(Some((seq, length.min(self.capacity))))
    }

    /// Whether nothing was written since [`snapshot_state`](Self::snapshot_state) gave `seq`.
    pub fn snapshot_still(&self, seq: u32) -> bool {
        match (&self.live, self.read_only) {
            (Some(l), true) => !l.changed_since(seq),
            _ => true,
        }
    }

    /// The live file's counter at the reader's last refresh (what `changed` waits to move on from).
    pub fn seen_seq(&self) -> u32 {
        self.follow.seen_seq
    }

    /// The writer's published (row count, counter), or None after a schema change.
    ///
    /// The header's row count is read between two reads of the counter that agree: read
    /// before the live state, it could be a count from inside a batch the counter has left.
    fn published(&mut self) -> Result<Option<(u64, u32)>> {
        let Some(live) = self.live.clone() else {
            let stored = self.stored_len();
            // No live file: a writer of an older mmapvec, or none; the header says it all.
            if header_replaced(&self.path, &self.header_file) {
                return Ok(None);
            }
            return Ok(Some((stored, 0)));
        };
        let start = Instant::now();
        loop {
            // A unit that does not end soon may be a writer killed inside it: asked after a
            // short wait, so that a dead writer costs a reader milliseconds, not the whole wait.
            let left = UNIT_WAIT.saturating_sub(start.elapsed());
            let state = live.state(UNIT_SHORT_WAIT.min(left)).or_else(|seq| {
                if self.writer_gone(seq) {
                    Err(seq)
                } else {
                    live.state(left.saturating_sub(UNIT_SHORT_WAIT))
                }
            });
            let st = match state {
                Ok(st) => st,
                // A unit that never ends: a long batch, or a writer killed inside one.
                Err(seq) if self.writer_gone(seq) => return Ok(Some((self.stored_len(), seq))),
                Err(_) => return Err(self.long_batch()),
            };
            if st.schema_gen != self.follow.schema_gen {
                return Ok(None);
            }
            let stored = self.stored_len();
            if live.changed_since(st.seq) {
                // A unit began meanwhile: the header's count may be from inside it.
                if start.elapsed() >= UNIT_WAIT {
                    return Err(self.long_batch());
                }
                continue;
            }
            // The published count trails the header's while the writer pushes; the header's
            // own is the truth only once the writer is gone (killed: a writer that closes
            // publishes its last count).
            let length = if st.length < stored && self.writer_gone(st.seq) {
                stored
            } else {
                st.length.min(stored)
            };
            return Ok(Some((length, st.seq)));
        }
    }

    fn long_batch(&self) -> Error {
        Error::new(
            Code::Locked,
            format!(
                "{}: the writer has been inside one batch, or began a new one, for each of {} ms; read again once it pauses (a batch should be one tick's writes)",
                self.path.display(),
                UNIT_WAIT.as_millis()
            ),
        )
    }

    /// The header's row count as it is now (the writer's JavaScript stores it on every change).
    fn stored_len(&self) -> u64 {
        header::decode_length(self.header_map.read_f64(header::OFF_LENGTH), "").unwrap_or(0)
    }

    /// Whether the writer that published counter `seq` is gone without closing (probing the
    /// header's lock at most every [`PROBE_EVERY`]).
    fn writer_gone(&mut self, seq: u32) -> bool {
        if self.follow.gone_at == Some(seq) {
            return true;
        }
        if self.follow.probed.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return false;
        }
        self.follow.probed = Some(Instant::now());
        // The header's lock, on the header file that is there now: after a schema change the
        // writer's lock is on the new file, and the one this reader opened is free.
        let gone = match dir::open_header_file(&self.path, false) {
            Ok(current) => matches!(lock::probe(&current), Ok(LockState::Unlocked | LockState::Shared)),
            Err(_) => false,
        };
        self.follow.gone_at = gone.then_some(seq);
        gone
    }
}
