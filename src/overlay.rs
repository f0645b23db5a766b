//! Overlay mode: each column (and the header) is a `WebAssembly.Memory` with its file mapped
//! over the memory's first pages.
//!
//! ## Safety rules
//! - A column (and the header) is a `WebAssembly.Memory` that V8 allocated, with the file mapped
//!   over its first pages. Its buffer cannot be detached nor transferred by JavaScript, so its
//!   pages are freed only with the memory object, which a strong reference held here keeps
//!   alive until the file mapping is replaced by anonymous memory again.
//! - Anonymous memory is put back before anything else may happen to the pages: before the
//!   reference is dropped (close, growth, shrink, a dropped column, a replaced header, the vec
//!   collected, or an [`Overlay`] dropped for any reason), and the views are then detached with
//!   `memory.grow(0)` wherever JavaScript may run. A memory is never grown while the file is
//!   mapped in it.

use std::fs::File;

use mmapvec_core::sys::{self, Guard, MapMode};
use mmapvec_core::{Code, Error};
use napi::bindgen_prelude::Unknown;
use napi::Env;

use crate::error::js_error;
use crate::napi_calls::{self, failed, Ref};

/// WebAssembly's page: memories are sized in these.
const WASM_PAGE: usize = 65536;

fn overlay_error(message: String) -> crate::error::JsError {
    js_error(Error::new(Code::Io, message))
}

/// Overlay mode's memory for one file: a `WebAssembly.Memory` with the file's first `len`
/// bytes mapped over its start.
///
/// Why a WebAssembly memory and not `napi_create_arraybuffer`: a plain ArrayBuffer can be
/// transferred by any JavaScript (`structuredClone(b, { transfer })`, `postMessage`, BYOB stream
/// reads, `ArrayBuffer.prototype.transfer`), which moves its memory to a new buffer that this
/// module cannot see; when that one is collected, `free` gives pages that are still the file's
/// mapping to unrelated allocations (shown in docs/DESIGN.md). A WebAssembly memory's buffer is
/// not detachable: `attach` checks that, and only the memory object (held here alone) can grow
/// it. It is also page-aligned memory of its own (never malloc's heap), so the mapped pages
/// hold nothing else.
#[derive(Debug)]
pub(crate) struct Overlay {
    /// Strong: the memory, and so its pages, live until this is dropped. Taken only by `Drop`.
    memory: Option<Ref>,
    base: *mut u8,
    /// Bytes of the file mapped at `base` (whole pages; 0: nothing mapped).
    len: usize,
    /// The SIGBUS guard of the file's pages in the memory (see `sys::Guard`).
    guard: Option<Guard>,
}

impl Overlay {
    /// Makes a `WebAssembly.Memory` of at least `len` bytes (whole pages) and maps `file`'s
    /// first `len` bytes over its start.
    pub(crate) fn attach(env: &Env, file: &File, len: usize, mode: MapMode) -> crate::error::Result<Overlay> {
        if !sys::OVERLAY {
            return Err(js_error(Error::new(
                Code::Invalid,
                "overlay mode needs mmap(MAP_FIXED) and runs on Linux and macOS only; use mode: 'mmap' or 'buffered'",
            )));
        }
        let pages = len.div_ceil(WASM_PAGE).max(1);
        let ctor = napi_calls::global_path(env, &[c"WebAssembly", c"Memory"])?;
        let desc = napi_calls::object(env)?;
        napi_calls::set_property(env, desc, c"initial", napi_calls::uint32(env, pages as u32)?)?;
        let Ok(memory) = napi_calls::new_instance(env, ctor, [desc]) else {
            napi_calls::clear_exception(env);
            return Err(overlay_error(format!(
                "overlay mode could not allocate {} bytes of WebAssembly memory (address space or memory exhausted); open the vec with mode: 'buffered'",
                pages * WASM_PAGE
            )));
        };
        let buffer = napi_calls::property(env, memory, c"buffer")?;
        // A buffer JavaScript could detach could also be transferred away and freed while the
        // file is mapped in it. WebAssembly memories' buffers are not detachable, so this call
        // must be refused; if it is not (WebAssembly.Memory was replaced), nothing was mapped.
        let status = napi_calls::detach_arraybuffer(env, buffer);
        if status != napi::sys::Status::napi_detachable_arraybuffer_expected {
            napi_calls::clear_exception(env);
            return Err(overlay_error(
                "overlay mode needs WebAssembly.Memory's buffers, which JavaScript cannot detach; this runtime's can be detached (was WebAssembly.Memory replaced?); open the vec with mode: 'buffered'".into(),
            ));
        }
        let (base, blen) = napi_calls::arraybuffer_info(env, buffer)?;
        if !(base as usize).is_multiple_of(sys::page_size()) || blen < len {
            return Err(overlay_error(format!(
                "overlay mode needs a page-aligned WebAssembly memory of {len} bytes, got {blen} bytes at {base:p}; open the vec with mode: 'buffered'"
            )));
        }
        let mut overlay = Overlay {
            memory: Some(Ref::strong(env, memory, "keeping a memory")?),
            base,
            len: 0,
            guard: None,
        };
        if len == 0 {
            return Ok(overlay);
        }
        // SAFETY: `[base, base + len)` is whole pages (checked) at the start of the memory's
        // buffer (at least `len` long, checked): memory V8 mapped for this WebAssembly memory
        // alone, which nothing else reads or writes yet. The strong reference keeps it from being
        // freed, and JavaScript cannot detach or grow it (no one else has the memory object),
        // until `unmap` puts anonymous memory back. `len` is within the file (the caller's: the
        // core maps as much of it).
        let mapped = unsafe { sys::map_file_over(base, len, file, mode) };
        // Even on a failure MAP_FIXED may have taken the old pages away: dropping the overlay
        // puts anonymous memory back before the memory may be freed, or, failing that, keeps
        // the memory alive forever.
        overlay.len = len;
        match mapped {
            Ok(()) => {
                overlay.guard = Some(Guard::new(base, len));
                Ok(overlay)
            }
            Err(e) => Err(overlay_error(format!(
                "overlay mode could not map the file over its memory: {e}; open the vec with mode: 'buffered'"
            ))),
        }
    }

    /// Bytes of the file mapped over the memory.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether a page of the file faulted under the memory (see `sys::Guard`).
    pub(crate) fn faulted(&self) -> bool {
        self.guard.as_ref().is_some_and(Guard::faulted)
    }

    /// Whether `marks` (see [`detach`](Self::detach)) says the memory's buffer has been marked
    /// untransferable; also when asking fails, since growing then might abort.
    fn marked(&self, env: &Env, marks: &Marks) -> bool {
        let Some(f) = marks.function(env) else {
            return false;
        };
        let answer = self.buffer(env).and_then(|b| {
            let global = napi_calls::global(env)?;
            let out = napi_calls::call(env, global, f, [b])?;
            napi_calls::bool_value(env, out)
        });
        if answer.is_err() {
            napi_calls::clear_exception(env);
        }
        answer.unwrap_or(true)
    }

    /// The memory object.
    fn memory<'e>(&self, env: &'e Env) -> crate::error::Result<Unknown<'e>> {
        let memory = self.memory.as_ref().and_then(|m| m.value(env));
        memory.ok_or_else(|| failed(napi::sys::Status::napi_generic_failure, "reading a memory"))
    }

    /// The memory's current buffer.
    pub(crate) fn buffer<'e>(&self, env: &'e Env) -> crate::error::Result<Unknown<'e>> {
        napi_calls::property(env, self.memory(env)?, c"buffer")
    }

    /// Puts anonymous memory back over the file's pages, so nothing can fault there; false when
    /// that failed and the file is still mapped in the memory.
    fn unmap(&mut self) -> bool {
        if let Some(g) = self.guard.take() {
            g.release();
        }
        if self.len == 0 {
            return true;
        }
        // SAFETY: `attach` mapped the file over `[base, base + len)`, and the strong reference
        // has kept the memory (and that range) alive and unmoved since.
        let restored = unsafe { sys::restore_anonymous(self.base, self.len) }.is_ok();
        if restored {
            self.len = 0;
        }
        restored
    }

    /// Puts anonymous memory back over the file's pages, detaches every view when JavaScript
    /// may run here (`memory.grow(0)` replaces the buffer; collection, where it may not, leaves
    /// views alive reading zeros), then lets the memory go. If anonymous memory cannot be put
    /// back, the memory is kept alive for good rather than ever freed while mapped.
    ///
    /// `marks` holds `worker_threads.isMarkedAsUntransferable` where it exists: on Node 24 a
    /// buffer the program passed to `markAsUntransferable` has a V8 detach key, and growing
    /// its memory (which detaches the buffer without that key) aborts the process. Such a
    /// buffer keeps its views; they read the anonymous memory put back, never the file.
    pub(crate) fn detach(mut self, env: &Env, can_run_js: bool, marks: &Marks) {
        // Anonymous memory goes back over the file's pages at once, so nothing can fault there.
        self.unmap();
        if can_run_js && !self.marked(env, marks) {
            // Growing by zero pages replaces the buffer in place and detaches the old one, with
            // every view over it (WebAssembly's rule). The file is no longer mapped there.
            let detached = self.memory(env).and_then(|memory| {
                let grow = napi_calls::property(env, memory, c"grow")?;
                let zero = napi_calls::uint32(env, 0)?;
                napi_calls::call(env, memory, grow, [zero])
            });
            if detached.is_err() {
                napi_calls::clear_exception(env);
            }
        }
        // Dropping `self` lets the memory go (see `Drop`).
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if !self.unmap() {
            // Never freed while the file is mapped in it: the memory is kept alive for good.
            std::mem::forget(self.memory.take());
        }
    }
}

/// Overlay mode: a strong reference to `worker_threads.isMarkedAsUntransferable`, where the
/// runtime has it, which an overlay asks before detaching its views (see [`Overlay::detach`]).
#[derive(Debug, Default)]
pub(crate) struct Marks(Option<Ref>);

impl Marks {
    /// Keeps `is_marked`, replacing the function kept before.
    pub(crate) fn keep(&mut self, env: &Env, is_marked: Unknown<'_>) -> crate::error::Result<()> {
        if !napi_calls::is_function(is_marked) {
            return Err(js_error(Error::new(
                Code::Invalid,
                "isMarkedAsUntransferable must be a function",
            )));
        }
        self.0 = Some(Ref::strong(env, is_marked, "keeping a function")?);
        Ok(())
    }

    /// The function kept, if any.
    fn function<'e>(&self, env: &'e Env) -> Option<Unknown<'e>> {
        self.0.as_ref()?.value(env)
    }
}
