//! The Node-API binding: the `#[napi]` class [`NativeVec`](native_vec::NativeVec) over
//! `mmapvec-core`, the mapping of the core's errors, and the modules that hand the core's mapped
//! memory to V8 and take it back. Nothing here maps files or takes locks; the TypeScript facade
//! in `ts/` is the public API.
//!
//! Unsafe code is denied here and allowed only in the modules that hand memory to V8 or call
//! Node-API directly, each with its safety rules at its top: `napi_calls.rs` (the raw calls,
//! behind safe functions), `views.rs` (external ArrayBuffers), `overlay.rs` (overlay mode's
//! WebAssembly memories) and `native_vec/teardown.rs` (the write-back at an environment's
//! teardown). The napi macros allow their own generated unsafe code.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::path::Path;

use napi::Env;

use crate::error::Result;
use napi_derive::napi;

use crate::error::js_error;

// Public: their `#[napi]` items are what the binding exports.
pub mod args;
pub mod flush;
pub mod info;
pub mod layout;
pub mod native_vec;

pub mod error;
#[allow(unsafe_code)]
mod napi_calls;
#[allow(unsafe_code)]
mod overlay;
#[allow(unsafe_code)]
mod views;

/// Whether ArrayBuffers may point at memory V8 did not allocate (false inside Electron's V8
/// memory cage, where vecs open in buffered mode).
#[napi]
pub fn external_buffers_allowed(env: Env) -> bool {
    views::external_buffers_allowed(&env)
}

/// Detaches an ArrayBuffer V8 allocated: buffered mode empties the views of a column buffer it
/// replaced or closed. Its buffers are marked untransferable (so that a transfer cannot take
/// the rows away), which on Node 20 also stops `structuredClone` from detaching them, but not
/// this call. False when the runtime refused (the buffer cannot be detached).
#[napi]
pub fn detach_buffer(buffer: napi::bindgen_prelude::ArrayBuffer) -> bool {
    buffer.detach().is_ok()
}

/// Puts mmapvec's SIGBUS handler back if something replaced it (see `sys::ensure_installed`):
/// the facade calls it when the program starts or stops listening for SIGBUS, since Node swaps
/// its own handler in and out then.
#[napi]
pub fn guard_signals() -> bool {
    mmapvec_core::sys::ensure_installed()
}

/// Deletes the vec at `path` (ELOCKED while it is open anywhere).
#[napi]
pub fn remove(path: String) -> Result<()> {
    mmapvec_core::MmapVec::remove(Path::new(&path)).map_err(js_error)
}
