//! Handing mapped memory to JavaScript as external ArrayBuffers, and taking it back by
//! detaching them.
//!
//! ## Safety rules
//! - Every view JavaScript gets is a TypedArray over an external ArrayBuffer created here. Each
//!   ArrayBuffer's finalizer owns an `Arc` to the mapping it covers, so the memory stays mapped
//!   for as long as V8 (or a native reader holding the buffer, such as an in-flight `fs.write`)
//!   might touch it.
//! - Before memory a view covers stops holding the vec's rows (shrink, close, a column whose
//!   reservation had to move), every ArrayBuffer over it is detached: views held anywhere become
//!   length 0, reads give `undefined`, writes are ignored, nothing faults.
//! - An ArrayBuffer never covers more than `capacity * row_size` bytes of a column, which are
//!   always mapped to the file.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use mmapvec_core::sys::{self, FileMap, Pack, Reservation};
use mmapvec_core::{Code, Error, MmapVec};
use napi::bindgen_prelude::Unknown;
use napi::Env;

use crate::error::js_error;
use crate::napi_calls::{self, check, Ref};

/// What a view's finalizer holds: the mapping under it, which also knows how to put zero pages
/// over the view's memory when the view cannot be detached.
type Keep = Arc<dyn Revoke>;

/// A mapping views are made over.
trait Revoke: std::fmt::Debug + Send + Sync {
    /// Puts zero pages over `[ptr, ptr + len)` (a view's memory inside this mapping, widened to
    /// whole pages), so that it no longer reaches any file: how a view that JavaScript made
    /// impossible to detach is revoked once its memory stops holding rows.
    fn zero(&self, ptr: *mut u8, len: usize) -> std::io::Result<()>;
}

impl Revoke for Reservation {
    fn zero(&self, ptr: *mut u8, len: usize) -> std::io::Result<()> {
        let page = sys::page_size();
        let start = ptr as usize - self.base() as usize;
        let end = sys::round_up(start + len, page)
            .unwrap_or(self.len())
            .min(self.len());
        self.zero_range(start / page * page, end)
    }
}

impl Revoke for Pack {
    fn zero(&self, _ptr: *mut u8, _len: usize) -> std::io::Result<()> {
        // A pack's views cover all of it.
        Pack::zero(self)
    }
}

impl Revoke for FileMap {
    fn zero(&self, _ptr: *mut u8, _len: usize) -> std::io::Result<()> {
        // Header views cover the whole mapping.
        FileMap::zero(self)
    }
}

/// The finalizer of every ArrayBuffer [`Views::create`] makes: lets go of the mapping under it.
///
/// # Safety
/// Only Node-API calls it, once per buffer, with the `hint` given at the buffer's creation.
unsafe extern "C" fn release_mapping(_env: napi::sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Keep> leaked in `Views::create` for exactly this buffer; Node
    // calls the finalizer once.
    drop(unsafe { Box::from_raw(hint.cast::<Keep>()) });
}

/// A weak reference to an ArrayBuffer made here, and the memory it covers.
#[derive(Debug)]
struct View {
    buffer: Ref,
    mem: Keep,
    ptr: *mut u8,
    len: usize,
}

/// Weak references to the ArrayBuffers made over one mapping, so they can be detached later.
/// Dropping it deletes the references and leaves the views valid (their finalizers keep the
/// memory mapped).
#[derive(Debug, Default)]
pub(crate) struct Views {
    refs: Vec<View>,
}

/// Detaches ArrayBuffer `v`; false if JavaScript made that impossible. Node 24's
/// `markAsUntransferable` gives a buffer a detach key, and `napi_detach_arraybuffer` then
/// aborts the process (V8's `Detach` returns Nothing, which Node-API checks with `FromJust`).
/// `ArrayBuffer.prototype.transfer` checks the key and throws a TypeError instead, so where it
/// exists (Node 22 and later) a buffer is detached by `v.transfer(0)`: that moves nothing (the
/// new buffer is empty and V8's own, so V8's external-memory count only drops, and no
/// collection is started) and detaches `v`. Node 20 has no `transfer`, and its
/// `markAsUntransferable` sets no key. Whatever user code did to `transfer`, a buffer counts
/// as detached only when Node-API says so.
fn detach(env: &Env, v: Unknown<'_>) -> bool {
    if napi_calls::is_detached(env, v) {
        return true;
    }
    let transfer = napi_calls::global_path(env, &[c"ArrayBuffer", c"prototype", c"transfer"]);
    match transfer {
        Ok(f) if napi_calls::is_function(f) => {
            let detached = napi_calls::uint32(env, 0).and_then(|zero| napi_calls::call(env, v, f, [zero]));
            if detached.is_err() {
                napi_calls::clear_exception(env);
            }
        }
        _ => {
            napi_calls::clear_exception(env);
            // Without `transfer` no detach key can have been set from JavaScript (see above).
            napi_calls::detach_arraybuffer(env, v);
        }
    }
    napi_calls::is_detached(env, v)
}

impl Views {
    /// Makes an external ArrayBuffer over `[ptr, ptr + len)`; `keep` keeps that memory mapped
    /// until V8 lets go of the buffer.
    ///
    /// # Safety
    /// `[ptr, ptr + len)` must be readable and writable memory that stays so for as long as
    /// `keep` lives, and must hold nothing Rust code reads through references.
    unsafe fn create<'e>(
        &mut self,
        env: &'e Env,
        ptr: *mut u8,
        len: usize,
        keep: Keep,
    ) -> crate::error::Result<Unknown<'e>> {
        self.prune(env);
        let mem = keep.clone();
        let hint = Box::into_raw(Box::new(keep));
        let mut value = ptr::null_mut();
        // SAFETY: the caller guarantees the memory; the finalizer takes `hint` back exactly once.
        let status = unsafe {
            napi::sys::napi_create_external_arraybuffer(
                env.raw(),
                ptr.cast(),
                len,
                Some(release_mapping),
                hint.cast(),
                &mut value,
            )
        };
        if status != napi::sys::Status::napi_ok {
            // `hint` is not freed here: some Node versions run the finalizer themselves when
            // this call fails (Node 20 does for lengths past 4 GiB), so freeing it could free it
            // twice. Leaking one Arc on a failure path that the capacity limit already avoids is
            // the safe choice.
            if status == napi::sys::Status::napi_no_external_buffers_allowed {
                return Err(js_error(Error::new(
                    Code::Invalid,
                    "this runtime forbids ArrayBuffers over memory it did not allocate (Electron's V8 memory cage); memory-mapped views cannot be made here",
                )));
            }
            check(status, "creating a view")?;
        }
        // SAFETY: `value` is the ArrayBuffer Node-API just made in this env.
        let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
        let buffer = Ref::weak(env, value, "tracking a view")?;
        self.refs.push(View {
            buffer,
            mem,
            ptr,
            len,
        });
        Ok(value)
    }

    /// An ArrayBuffer over the whole mapped header `map`.
    pub(crate) fn header<'e>(
        &mut self,
        env: &'e Env,
        map: Arc<FileMap>,
    ) -> crate::error::Result<Unknown<'e>> {
        let (ptr, len) = (map.ptr(), map.len());
        // SAFETY: the header mapping is `len` bytes of read-write memory (shared, or private for
        // readOnly vecs) that lives as long as the Arc handed to the finalizer.
        unsafe { self.create(env, ptr, len, map) }
    }

    /// An ArrayBuffer over the whole of `pack`, which shows each of its columns at its offset.
    pub(crate) fn pack<'e>(&mut self, env: &'e Env, pack: Arc<Pack>) -> crate::error::Result<Unknown<'e>> {
        let (ptr, len) = (pack.base(), pack.len());
        // SAFETY: the pack's `len` bytes from its base are mapped read-write (its windows to
        // their files, zero pages between them) while the Arc lives; before a column leaves its
        // window or any of them stop holding rows, every buffer made here is detached.
        unsafe { self.create(env, ptr, len, pack) }
    }

    /// An ArrayBuffer over column `i` of `v`, covering its `capacity` rows from their start.
    pub(crate) fn column<'e>(
        &mut self,
        env: &'e Env,
        v: &MmapVec,
        i: usize,
    ) -> crate::error::Result<Unknown<'e>> {
        let (region, offset, len) = v.column_region(i);
        let ptr = region.base().wrapping_add(offset);
        // SAFETY: the `capacity * row_size` bytes from `offset` on in a column's reservation
        // are mapped read-write to its file (MmapVec's invariant) and stay mapped while the Arc
        // lives; before any of them stop holding rows, `detach` runs on every buffer made here.
        unsafe { self.create(env, ptr, len, region) }
    }

    /// An ArrayBuffer made here that is still alive and attached (JavaScript can detach one
    /// by transferring it), to hand out again instead of making another over the same memory.
    pub(crate) fn live<'e>(&mut self, env: &'e Env) -> Option<Unknown<'e>> {
        self.prune(env);
        self.refs
            .iter()
            .filter_map(|view| view.buffer.value(env))
            .find(|&v| !napi_calls::is_detached(env, v))
    }

    /// Forgets references whose ArrayBuffer was collected already.
    fn prune(&mut self, env: &Env) {
        self.refs.retain(|view| view.buffer.value(env).is_some());
    }

    /// Detaches every ArrayBuffer still alive: every view over it becomes length 0. One that
    /// cannot be detached (see [`detach`]) stays as it is, unless `gone`: its memory is about to
    /// stop holding rows for good (close, a column that moved or was dropped, a replaced
    /// header), and gets zero pages, so the view reads zeros and never reaches the file again
    /// (nor faults once the file shrinks). Shrinking passes false: the rows below the new end
    /// are still the vec's, and the pages past it get zero pages from the shrink itself.
    pub(crate) fn detach_all(&mut self, env: &Env, gone: bool) {
        let mut kept = Vec::new();
        for view in self.refs.drain(..) {
            if view.buffer.value(env).is_some_and(|v| !detach(env, v)) {
                if !gone {
                    // Still the vec's memory: tracked, to be revoked when it stops being so.
                    kept.push(view);
                    continue;
                }
                // On a failure the view keeps reaching the file (the finalizer still keeps the
                // mapping alive, so nothing is freed under it).
                let _ = view.mem.zero(view.ptr, view.len);
            }
        }
        self.refs = kept;
    }

    /// Deletes the references without detaching (the views stay valid: their finalizers keep
    /// the memory mapped).
    pub(crate) fn forget(&mut self) {
        self.refs.clear();
    }
}

/// Whether this runtime lets ArrayBuffers point at memory it did not allocate. Electron 21 and
/// later do not (the V8 memory cage): there, vecs must be opened in buffered mode. Asked with
/// the raw Node-API call, since napi-rs's wrapper silently copies instead of failing.
pub(crate) fn external_buffers_allowed(env: &Env) -> bool {
    static PROBE: [u8; 8] = [0; 8];
    let mut value = ptr::null_mut();
    // SAFETY: a static, never-written 8-byte buffer outlives any ArrayBuffer made over it; no
    // finalizer is given, and the probe buffer is never handed to JavaScript.
    let status = unsafe {
        napi::sys::napi_create_external_arraybuffer(
            env.raw(),
            PROBE.as_ptr().cast_mut().cast(),
            PROBE.len(),
            None,
            ptr::null_mut(),
            &mut value,
        )
    };
    status != napi::sys::Status::napi_no_external_buffers_allowed
}
