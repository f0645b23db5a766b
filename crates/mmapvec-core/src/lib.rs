//! mmapvec-core: persistent, memory-mapped, growable struct-of-arrays vectors.
//!
//! A vec is a directory: a header file (magic, byte order, format version, schema, the
//! application's version, the row count) and one file per column of raw native-endian values.
//! Each column is mapped into an address-space reservation of its own, so it grows by extending
//! its file and mapping the new pages in place: existing data is never copied and its address
//! never moves while the reservation lasts. The format is described in docs/FORMAT.md.
//!
//! It knows nothing of Node: the binding (the root package, `src/`) hands the mapped memory to
//! V8 and takes it back. Unsafe code is allowed only where memory is mapped: in `sys` (the
//! platform calls) and in the vec's row copies (`vec/io.rs`); every other module denies it.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

mod dir;
pub mod error;
pub mod header;
pub mod inspect;
pub mod live;
pub mod lock;
pub mod schema;
mod settle;
#[allow(unsafe_code)]
pub mod sys;
pub mod vec;

pub use error::{Code, Error, Result};
pub use schema::{Column, ElemType, Schema};
pub use vec::{Growth, MmapVec, OpenOptions, SyncJob};
