//! How to open a vec ([`OpenOptions`]), and the checks of those options made before anything
//! touches the disk.

use std::path::Path;
use std::time::Duration;

use crate::error::{Code, Error, Result};
use crate::schema::Schema;

/// Address space reserved per column by default; a column grows in place inside it.
pub const DEFAULT_RESERVATION: usize = 1 << 30;

/// How to open a vec.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the vec when it is missing.
    pub create: bool,
    /// Fail with EEXIST when the vec exists.
    pub create_new: bool,
    /// Shared lock, private mapping; the facade refuses every write.
    pub read_only: bool,
    /// Rows to make room for (at creation, or at once when opening a smaller vec read-write).
    pub capacity: u64,
    /// How long to wait for the lock; zero fails at once.
    pub lock_timeout: Duration,
    /// The application's data version: stored at creation, checked at open when given.
    pub version: Option<u64>,
    /// Address space to reserve per column at the least (bytes). A column grows in place
    /// within it; past it, the column moves to a reservation four times its size.
    pub reservation: usize,
    /// The largest view the caller can make of one column, in bytes (Node 20 cannot make
    /// ArrayBuffers over memory it did not allocate past 4 GiB). Capacity never goes past it.
    pub max_view_bytes: u64,
    /// What the message of a column past `max_view_bytes` tells the program to do (the binding
    /// knows what lifts its limit); by default, to split the data.
    pub view_limit_fix: String,
    /// Map the columns of a vec that opens with this many mapped bytes or more back to back in
    /// one [`crate::sys::Pack`], so that a caller can show all of them through one view (see
    /// [`MmapVec::column_pack`](super::MmapVec::column_pack)); the first growth moves them into reservations of their own.
    /// None: never (the default). The Node binding uses [`PACK_MIN_BYTES`].
    pub pack_min_bytes: Option<usize>,
}

/// The mapped bytes from which the Node binding packs an opened vec's columns
/// ([`OpenOptions::pack_min_bytes`]).
/// V8 counts every ArrayBuffer's bytes as external memory and, on Node 20, each new buffer that
/// takes the count 64 MiB past its level at the last full collection makes it mark the heap
/// then and there; a vec of five columns opened at 1 GiB paid that four times over, once per
/// view (BENCHMARKS.md, "Targets: met and missed", open, has the figures).
pub const PACK_MIN_BYTES: usize = 64 << 20;

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: true,
            create_new: false,
            read_only: false,
            capacity: 0,
            lock_timeout: Duration::ZERO,
            version: None,
            reservation: DEFAULT_RESERVATION,
            max_view_bytes: u64::MAX,
            view_limit_fix: "split the data".to_string(),
            pack_min_bytes: None,
        }
    }
}

/// Refuses, before anything touches the disk, a `capacity` option that no view could show.
pub(super) fn check_capacity(path: &Path, schema: &Schema, opts: &OpenOptions) -> Result<()> {
    let widest = schema
        .columns
        .iter()
        .map(|c| c.row_size() as u64)
        .max()
        .unwrap_or(1);
    if opts.capacity > opts.max_view_bytes / widest {
        return Err(Error::new(
            Code::Range,
            format!(
                "{}: a capacity of {} rows would make a column larger than this runtime can show as one view ({} bytes); {}",
                path.display(),
                opts.capacity,
                opts.max_view_bytes,
                opts.view_limit_fix
            ),
        ));
    }
    if opts.reservation as u64 > MAX_RESERVATION {
        return Err(Error::new(
            Code::Invalid,
            format!(
                "{}: a reservation of {} bytes per column is more address space than a 64-bit process has (at most 2^47 bytes); leave it at the default of 1 GiB or choose less",
                path.display(),
                opts.reservation
            ),
        ));
    }
    Ok(())
}

/// The most address space a column may reserve: x86-64 and arm64 give user space 2^47 bytes.
const MAX_RESERVATION: u64 = 1 << 47;
