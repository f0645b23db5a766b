//! Handing mapped memory to JavaScript, and taking it back.
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
//!
//! ## Overlay mode (see [`Overlay`])
//! - A column (and the header) is a `WebAssembly.Memory` that V8 allocated, with the file mapped
//!   over its first pages. Its buffer cannot be detached nor transferred by JavaScript, so its
//!   pages are freed only with the memory object, which a strong reference held here keeps
//!   alive until the file mapping is replaced by anonymous memory again.
//! - Anonymous memory is put back before anything else may happen to the pages: before the
//!   reference is dropped (close, growth, shrink, a dropped column, a replaced header, the vec
//!   collected), and the views are then detached with `memory.grow(0)` wherever JavaScript may
//!   run. A memory is never grown while the file is mapped in it.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{Uint8Array, Unknown};
use napi::{sys, Env, JsValue, Status};

use mmapvec_core::sys::MapMode;
use mmapvec_core::vec::{MmapVec, OpenOptions, SyncJob};
use mmapvec_core::{Code, Error, Schema};
use std::path::Path;

/// Turns a core error into the JavaScript error the facade recognises: the message starts with
/// the stable code (`"ELOCKED: ..."`), which the facade moves into `err.code`.
pub fn js_error(e: Error) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("{}: {}", e.code.as_str(), e.message),
    )
}

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

impl Revoke for mmapvec_core::sys::Reservation {
    fn zero(&self, ptr: *mut u8, len: usize) -> std::io::Result<()> {
        let page = mmapvec_core::sys::page_size();
        let start = ptr as usize - self.base() as usize;
        let end = mmapvec_core::sys::round_up(start + len, page)
            .unwrap_or(self.len())
            .min(self.len());
        self.zero_range(start / page * page, end)
    }
}

impl Revoke for mmapvec_core::sys::Pack {
    fn zero(&self, _ptr: *mut u8, _len: usize) -> std::io::Result<()> {
        // A pack's views cover all of it.
        mmapvec_core::sys::Pack::zero(self)
    }
}

impl Revoke for mmapvec_core::sys::FileMap {
    fn zero(&self, _ptr: *mut u8, _len: usize) -> std::io::Result<()> {
        // Header views cover the whole mapping.
        mmapvec_core::sys::FileMap::zero(self)
    }
}

unsafe extern "C" fn release_mapping(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Keep> leaked in `external_arraybuffer` for exactly this buffer;
    // Node calls the finalizer once.
    drop(unsafe { Box::from_raw(hint.cast::<Keep>()) });
}

fn check(status: i32, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            Status::from(status),
            format!("EIO: Node-API call failed while {what} (status {status})"),
        ))
    }
}

/// A weak reference to an ArrayBuffer made here, and the memory it covers.
#[derive(Debug)]
struct View {
    r: sys::napi_ref,
    mem: Keep,
    ptr: *mut u8,
    len: usize,
}

impl View {
    /// The ArrayBuffer, unless V8 collected it already.
    fn buffer(&self, env: &Env) -> Option<sys::napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `r` is a live reference created in this env (references are deleted only as
        // they leave their list).
        let ok = unsafe { sys::napi_get_reference_value(env.raw(), self.r, &mut v) } == sys::Status::napi_ok;
        (ok && !v.is_null()).then_some(v)
    }
}

/// Whether ArrayBuffer `v` is detached.
fn is_detached(env: &Env, v: sys::napi_value) -> bool {
    let mut d = false;
    // SAFETY: a plain Node-API query on a live value of this env.
    let ok = unsafe { sys::napi_is_detached_arraybuffer(env.raw(), v, &mut d) } == sys::Status::napi_ok;
    ok && d
}

/// Weak references to the ArrayBuffers made over one mapping, so they can be detached later.
#[derive(Debug, Default)]
struct Views {
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
fn detach(env: &Env, v: sys::napi_value) -> bool {
    let raw = env.raw();
    if is_detached(env, v) {
        return true;
    }
    let transfer = (|| -> napi::Result<sys::napi_value> {
        let mut global = ptr::null_mut();
        // SAFETY: plain Node-API call on a live env.
        let status = unsafe { sys::napi_get_global(raw, &mut global) };
        check(status, "finding ArrayBuffer")?;
        let ctor = property(env, global, c"ArrayBuffer")?;
        let proto = property(env, ctor, c"prototype")?;
        property(env, proto, c"transfer")
    })();
    let callable = transfer.as_ref().is_ok_and(|&f| {
        let mut kind = sys::ValueType::napi_undefined;
        // SAFETY: a plain Node-API query on a live value of this env.
        let ok = unsafe { sys::napi_typeof(raw, f, &mut kind) } == sys::Status::napi_ok;
        ok && kind == sys::ValueType::napi_function
    });
    match transfer {
        Ok(f) if callable => {
            let mut zero = ptr::null_mut();
            let mut empty = ptr::null_mut();
            // SAFETY: `f` is a function and `v` a live ArrayBuffer of this env; one argument.
            let status = unsafe {
                if sys::napi_create_uint32(raw, 0, &mut zero) == sys::Status::napi_ok {
                    sys::napi_call_function(raw, v, f, 1, &zero, &mut empty)
                } else {
                    sys::Status::napi_generic_failure
                }
            };
            if status != sys::Status::napi_ok {
                clear_exception(env);
            }
        }
        _ => {
            clear_exception(env);
            // SAFETY: `v` is a live ArrayBuffer of this env, and without `transfer` no detach
            // key can have been set from JavaScript (see above).
            unsafe { sys::napi_detach_arraybuffer(raw, v) };
        }
    }
    is_detached(env, v)
}

impl Views {
    /// Makes an external ArrayBuffer over `[ptr, ptr + len)`; `keep` keeps that memory mapped
    /// until V8 lets go of the buffer.
    ///
    /// # Safety
    /// `[ptr, ptr + len)` must be readable and writable memory that stays so for as long as
    /// `keep` lives, and must hold nothing Rust code reads through references.
    unsafe fn create(
        &mut self,
        env: &Env,
        ptr: *mut u8,
        len: usize,
        keep: Keep,
    ) -> napi::Result<sys::napi_value> {
        self.prune(env);
        let mem = keep.clone();
        let hint = Box::into_raw(Box::new(keep));
        let mut value = ptr::null_mut();
        // SAFETY: the caller guarantees the memory; the finalizer takes `hint` back exactly once.
        let status = unsafe {
            sys::napi_create_external_arraybuffer(
                env.raw(),
                ptr.cast(),
                len,
                Some(release_mapping),
                hint.cast(),
                &mut value,
            )
        };
        if status != sys::Status::napi_ok {
            // `hint` is not freed here: some Node versions run the finalizer themselves when
            // this call fails (Node 20 does for lengths past 4 GiB), so freeing it could free it
            // twice. Leaking one Arc on a failure path that the capacity limit already avoids is
            // the safe choice.
            if status == sys::Status::napi_no_external_buffers_allowed {
                return Err(js_error(Error::new(
                    Code::Invalid,
                    "this runtime forbids ArrayBuffers over memory it did not allocate (Electron's V8 memory cage); memory-mapped views cannot be made here",
                )));
            }
            check(status, "creating a view")?;
        }
        let mut r = ptr::null_mut();
        // SAFETY: `value` is the ArrayBuffer just created in this env.
        let status = unsafe { sys::napi_create_reference(env.raw(), value, 0, &mut r) };
        check(status, "tracking a view")?;
        self.refs.push(View { r, mem, ptr, len });
        Ok(value)
    }

    /// An ArrayBuffer made here that is still alive and attached (JavaScript can detach one
    /// by transferring it), to hand out again instead of making another over the same memory.
    fn live(&mut self, env: &Env) -> Option<sys::napi_value> {
        self.prune(env);
        self.refs
            .iter()
            .filter_map(|view| view.buffer(env))
            .find(|&v| !is_detached(env, v))
    }

    /// Forgets references whose ArrayBuffer was collected already.
    fn prune(&mut self, env: &Env) {
        self.refs.retain(|view| {
            let alive = view.buffer(env).is_some();
            if !alive {
                // SAFETY: a live reference of this env; it leaves the list, so it is deleted
                // once.
                unsafe { sys::napi_delete_reference(env.raw(), view.r) };
            }
            alive
        });
    }

    /// Detaches every ArrayBuffer still alive: every view over it becomes length 0. One that
    /// cannot be detached (see [`detach`]) stays as it is, unless `gone`: its memory is about to
    /// stop holding rows for good (close, a column that moved or was dropped, a replaced
    /// header), and gets zero pages, so the view reads zeros and never reaches the file again
    /// (nor faults once the file shrinks). Shrinking passes false: the rows below the new end
    /// are still the vec's, and the pages past it get zero pages from the shrink itself.
    fn detach_all(&mut self, env: &Env, gone: bool) {
        let mut kept = Vec::new();
        for view in self.refs.drain(..) {
            if view.buffer(env).is_some_and(|v| !detach(env, v)) {
                if !gone {
                    // Still the vec's memory: tracked, to be revoked when it stops being so.
                    kept.push(view);
                    continue;
                }
                // On a failure the view keeps reaching the file (the finalizer still keeps the
                // mapping alive, so nothing is freed under it).
                let _ = view.mem.zero(view.ptr, view.len);
            }
            // SAFETY: a live reference of this env; deleted once, as it left the list.
            unsafe { sys::napi_delete_reference(env.raw(), view.r) };
        }
        self.refs = kept;
    }

    /// Deletes the references without detaching (the views stay valid: their finalizers keep
    /// the memory mapped).
    fn forget(&mut self, env: &Env) {
        for View { r, .. } in self.refs.drain(..) {
            // SAFETY: `r` is a live reference created in this env, deleted once.
            unsafe { sys::napi_delete_reference(env.raw(), r) };
        }
    }
}

/// WebAssembly's page: memories are sized in these.
const WASM_PAGE: usize = 65536;

fn overlay_error(message: String) -> napi::Error {
    js_error(Error::new(Code::Io, message))
}

/// `obj[name]`, for a property that holds a value.
fn property(env: &Env, obj: sys::napi_value, name: &std::ffi::CStr) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: `obj` is a live value of this env and `name` a NUL-terminated string.
    let status = unsafe { sys::napi_get_named_property(env.raw(), obj, name.as_ptr(), &mut out) };
    check(status, "reading a property")?;
    Ok(out)
}

/// Drops whatever exception a failed call into JavaScript left, so that our own error is the
/// one thrown.
fn clear_exception(env: &Env) {
    let mut e = ptr::null_mut();
    // SAFETY: a plain Node-API call on a live env.
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut e) };
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
struct Overlay {
    /// Strong: the memory, and so its pages, live until this is deleted.
    memory: sys::napi_ref,
    base: *mut u8,
    /// Bytes of the file mapped at `base` (whole pages; 0: nothing mapped).
    len: usize,
    /// The SIGBUS guard of the file's pages in the memory (see `sys::Guard`).
    guard: Option<mmapvec_core::sys::Guard>,
}

impl Overlay {
    /// Makes a `WebAssembly.Memory` of at least `len` bytes (whole pages) and maps `file`'s
    /// first `len` bytes over its start.
    fn attach(env: &Env, file: &std::fs::File, len: usize, mode: MapMode) -> napi::Result<Overlay> {
        if !mmapvec_core::sys::OVERLAY {
            return Err(js_error(Error::new(
                Code::Invalid,
                "overlay mode needs mmap(MAP_FIXED) and runs on Linux and macOS only; use mode: 'mmap' or 'buffered'",
            )));
        }
        let pages = len.div_ceil(WASM_PAGE).max(1);
        let raw = env.raw();
        let mut global = ptr::null_mut();
        // SAFETY: plain Node-API call on a live env.
        let status = unsafe { sys::napi_get_global(raw, &mut global) };
        check(status, "finding WebAssembly")?;
        let wasm = property(env, global, c"WebAssembly")?;
        let ctor = property(env, wasm, c"Memory")?;
        let mut desc = ptr::null_mut();
        let mut initial = ptr::null_mut();
        // SAFETY: plain Node-API calls creating values in this env.
        unsafe {
            check(sys::napi_create_object(raw, &mut desc), "describing a memory")?;
            check(
                sys::napi_create_uint32(raw, pages as u32, &mut initial),
                "describing a memory",
            )?;
            check(
                sys::napi_set_named_property(raw, desc, c"initial".as_ptr(), initial),
                "describing a memory",
            )?;
        }
        let mut memory = ptr::null_mut();
        // SAFETY: `ctor` and `desc` are live values of this env; one argument is passed.
        let status = unsafe { sys::napi_new_instance(raw, ctor, 1, &desc, &mut memory) };
        if status != sys::Status::napi_ok {
            clear_exception(env);
            return Err(overlay_error(format!(
                "overlay mode could not allocate {} bytes of WebAssembly memory (address space or memory exhausted); open the vec with mode: 'buffered'",
                pages * WASM_PAGE
            )));
        }
        let buffer = property(env, memory, c"buffer")?;
        // A buffer JavaScript could detach could also be transferred away and freed while the
        // file is mapped in it. WebAssembly memories' buffers are not detachable, so this call
        // must be refused; if it is not (WebAssembly.Memory was replaced), nothing was mapped.
        // SAFETY: `buffer` is a live value of this env.
        let status = unsafe { sys::napi_detach_arraybuffer(raw, buffer) };
        if status != sys::Status::napi_detachable_arraybuffer_expected {
            clear_exception(env);
            return Err(overlay_error(
                "overlay mode needs WebAssembly.Memory's buffers, which JavaScript cannot detach; this runtime's can be detached (was WebAssembly.Memory replaced?); open the vec with mode: 'buffered'".into(),
            ));
        }
        let mut data = ptr::null_mut();
        let mut blen = 0usize;
        // SAFETY: `buffer` is a live ArrayBuffer of this env.
        let status = unsafe { sys::napi_get_arraybuffer_info(raw, buffer, &mut data, &mut blen) };
        check(status, "reading a memory")?;
        let base = data.cast::<u8>();
        if !(base as usize).is_multiple_of(mmapvec_core::sys::page_size()) || blen < len {
            return Err(overlay_error(format!(
                "overlay mode needs a page-aligned WebAssembly memory of {len} bytes, got {blen} bytes at {base:p}; open the vec with mode: 'buffered'"
            )));
        }
        let mut memory_ref = ptr::null_mut();
        // SAFETY: `memory` is a live object of this env; a count of 1 makes the reference strong.
        let status = unsafe { sys::napi_create_reference(raw, memory, 1, &mut memory_ref) };
        check(status, "keeping a memory")?;
        let overlay = Overlay {
            memory: memory_ref,
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
        // until `detach`/`release` puts anonymous memory back. `len` is within the file (the
        // caller's: the core maps as much of it).
        match unsafe { mmapvec_core::sys::map_file_over(base, len, file, mode) } {
            Ok(()) => Ok(Overlay {
                len,
                guard: Some(mmapvec_core::sys::Guard::new(base, len)),
                ..overlay
            }),
            Err(e) => {
                // MAP_FIXED may have taken the old pages away: put anonymous memory back before
                // the memory may be freed, or, failing that, keep the memory alive forever.
                // SAFETY: the range is this memory's, as above.
                if unsafe { mmapvec_core::sys::restore_anonymous(base, len) }.is_ok() {
                    // SAFETY: the reference was created above and is deleted once.
                    unsafe { sys::napi_delete_reference(raw, overlay.memory) };
                }
                Err(overlay_error(format!(
                    "overlay mode could not map the file over its memory: {e}; open the vec with mode: 'buffered'"
                )))
            }
        }
    }

    /// Whether `marked` (see [`detach`](Self::detach)) says the memory's buffer has been marked
    /// untransferable; also when asking fails, since growing then might abort.
    fn marked(&self, env: &Env, marked: Option<sys::napi_value>) -> bool {
        let Some(f) = marked else {
            return false;
        };
        let answer = self.buffer(env).and_then(|b| {
            let raw = env.raw();
            let mut global = ptr::null_mut();
            let mut out = ptr::null_mut();
            let mut yes = false;
            // SAFETY: plain Node-API calls on live values of this env; one argument.
            unsafe {
                check(sys::napi_get_global(raw, &mut global), "asking about a memory")?;
                check(
                    sys::napi_call_function(raw, global, f, 1, &b, &mut out),
                    "asking about a memory",
                )?;
                check(
                    sys::napi_get_value_bool(raw, out, &mut yes),
                    "asking about a memory",
                )?;
            }
            Ok(yes)
        });
        if answer.is_err() {
            clear_exception(env);
        }
        answer.unwrap_or(true)
    }

    /// The memory's current buffer.
    fn buffer(&self, env: &Env) -> napi::Result<sys::napi_value> {
        let mut memory = ptr::null_mut();
        // SAFETY: `self.memory` is a live strong reference of this env.
        let status = unsafe { sys::napi_get_reference_value(env.raw(), self.memory, &mut memory) };
        check(status, "reading a memory")?;
        property(env, memory, c"buffer")
    }

    /// Puts anonymous memory back over the file's pages, detaches every view when JavaScript
    /// may run here (`memory.grow(0)` replaces the buffer; collection, where it may not, leaves
    /// views alive reading zeros), then lets the memory go. If anonymous memory cannot be put
    /// back, the memory is kept alive for good rather than ever freed while mapped.
    ///
    /// `marked` is `worker_threads.isMarkedAsUntransferable` where it exists: on Node 24 a
    /// buffer the program passed to `markAsUntransferable` has a V8 detach key, and growing
    /// its memory (which detaches the buffer without that key) aborts the process. Such a
    /// buffer keeps its views; they read the anonymous memory put back, never the file.
    fn detach(mut self, env: &Env, can_run_js: bool, marked: Option<sys::napi_value>) {
        // Anonymous memory goes back over the file's pages at once, so nothing can fault there.
        if let Some(g) = self.guard.take() {
            g.release();
        }
        let restored = self.len == 0
            // SAFETY: `attach` mapped the file over `[base, base + len)`, and the strong
            // reference has kept the memory (and that range) alive and unmoved since.
            || unsafe { mmapvec_core::sys::restore_anonymous(self.base, self.len) }.is_ok();
        if can_run_js && !self.marked(env, marked) {
            // Growing by zero pages replaces the buffer in place and detaches the old one, with
            // every view over it (WebAssembly's rule). The file is no longer mapped there.
            let detached = (|| -> napi::Result<()> {
                let mut memory = ptr::null_mut();
                let raw = env.raw();
                // SAFETY: as in `buffer`.
                let status = unsafe { sys::napi_get_reference_value(raw, self.memory, &mut memory) };
                check(status, "reading a memory")?;
                let grow = property(env, memory, c"grow")?;
                let mut zero = ptr::null_mut();
                let mut out = ptr::null_mut();
                // SAFETY: plain Node-API calls on live values of this env; one argument.
                unsafe {
                    check(sys::napi_create_uint32(raw, 0, &mut zero), "detaching views")?;
                    check(
                        sys::napi_call_function(raw, memory, grow, 1, &zero, &mut out),
                        "detaching views",
                    )
                }
            })();
            if detached.is_err() {
                clear_exception(env);
            }
        }
        if restored {
            // SAFETY: the reference is live and deleted exactly once (`self` is consumed).
            unsafe { sys::napi_delete_reference(env.raw(), self.memory) };
        }
    }
}

/// Whether this runtime lets ArrayBuffers point at memory it did not allocate. Electron 21 and
/// later do not (the V8 memory cage): there, vecs must be opened in buffered mode. Asked with
/// the raw Node-API call, since napi-rs's wrapper silently copies instead of failing.
pub fn external_buffers_allowed(env: &Env) -> bool {
    static PROBE: [u8; 8] = [0; 8];
    let mut value = ptr::null_mut();
    // SAFETY: a static, never-written 8-byte buffer outlives any ArrayBuffer made over it; no
    // finalizer is given, and the probe buffer is never handed to JavaScript.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env.raw(),
            PROBE.as_ptr().cast_mut().cast(),
            PROBE.len(),
            None,
            ptr::null_mut(),
            &mut value,
        )
    };
    status != sys::Status::napi_no_external_buffers_allowed
}

/// An open vec together with the views it handed to JavaScript.
#[derive(Debug)]
pub struct NodeVec {
    inner: Option<MmapVec>,
    header_views: Views,
    column_views: Vec<Views>,
    /// Views of the whole pack, for columns that are windows of one (see
    /// [`MmapVec::column_pack`]): one ArrayBuffer shows all of them.
    pack_views: Views,
    /// Overlay mode: the header's memory, and each stored column's.
    header_overlay: Option<Overlay>,
    column_overlays: Vec<Option<Overlay>>,
    /// Buffered mode: what to write back if the environment is torn down with the vec open.
    write_back: Option<WriteBack>,
    /// Overlay mode: a strong reference to `worker_threads.isMarkedAsUntransferable`, where
    /// the runtime has it (see [`Overlay::detach`]).
    marked: Option<sys::napi_ref>,
}

fn closed() -> napi::Error {
    js_error(Error::new(Code::Closed, "the vec is closed; open it again"))
}

impl NodeVec {
    /// Opens (or makes, for `temp`) a vec; without a schema, an existing one with its stored
    /// schema.
    pub fn open(
        path: &Path,
        schema: Option<&Schema>,
        opts: &OpenOptions,
        temp: bool,
    ) -> napi::Result<NodeVec> {
        let v = match (schema, temp) {
            (Some(schema), true) => MmapVec::temp(schema, opts),
            (Some(schema), false) => MmapVec::open(path, schema, opts),
            (None, false) => MmapVec::open_stored(path, opts),
            (None, true) => Err(Error::new(Code::Invalid, "a temp vec needs a schema")),
        }
        .map_err(js_error)?;
        let n = v.schema().columns.len();
        Ok(NodeVec {
            inner: Some(v),
            header_views: Views::default(),
            column_views: (0..n).map(|_| Views::default()).collect(),
            pack_views: Views::default(),
            header_overlay: None,
            column_overlays: (0..n).map(|_| None).collect(),
            write_back: None,
            marked: None,
        })
    }

    pub fn vec(&self) -> napi::Result<&MmapVec> {
        self.inner.as_ref().ok_or_else(closed)
    }

    /// The vec, for a call that changes or syncs it: refused once a page of a file faulted
    /// under the core's mappings or under an overlay (see [`MmapVec::intact`]).
    fn vec_mut(&mut self) -> napi::Result<&mut MmapVec> {
        let v = self.inner.as_mut().ok_or_else(closed)?;
        v.intact().map_err(js_error)?;
        let faulted = |o: &Option<Overlay>| {
            o.as_ref()
                .and_then(|o| o.guard.as_ref())
                .is_some_and(mmapvec_core::sys::Guard::faulted)
        };
        let file = if faulted(&self.header_overlay) {
            Some(mmapvec_core::header::HEADER_FILE.to_string())
        } else {
            self.column_overlays
                .iter()
                .position(faulted)
                .map(|i| v.schema().columns[i].file.clone())
        };
        if let Some(file) = file {
            return Err(js_error(Error::damaged(v.path(), &v.path().join(file))));
        }
        Ok(v)
    }

    /// An ArrayBuffer over the whole mapped header (the row count is an f64 at
    /// [`header_length_offset`](Self::header_length_offset)).
    pub fn header_buffer<'e>(&mut self, env: &'e Env) -> napi::Result<Unknown<'e>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let (map, _) = v.header_region();
        let (ptr, len) = (map.ptr(), map.len());
        // SAFETY: the header mapping is `len` bytes of read-write memory (shared, or private for
        // readOnly vecs) that lives as long as the Arc handed to the finalizer.
        let value = unsafe { self.header_views.create(env, ptr, len, map)? };
        // SAFETY: `value` was just created in this env.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    pub fn header_length_offset(&self) -> napi::Result<usize> {
        Ok(self.vec()?.header_region().1)
    }

    /// One ArrayBuffer per column (stored order) covering its `capacity` rows from the byte
    /// offset [`column_offsets`](Self::column_offsets) gives; packed columns share one, over
    /// their whole pack, made once while it stays attached.
    pub fn column_buffers<'e>(&mut self, env: &'e Env) -> napi::Result<Vec<Unknown<'e>>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let mut out = Vec::with_capacity(self.column_views.len());
        let mut pack_buffer = None;
        for (i, views) in self.column_views.iter_mut().enumerate() {
            if let Some((pack, _)) = v.column_pack(i) {
                let value = match pack_buffer.or_else(|| self.pack_views.live(env)) {
                    Some(b) => b,
                    None => {
                        let (ptr, len) = (pack.base(), pack.len());
                        // SAFETY: the pack's `len` bytes from its base are mapped read-write
                        // (its windows to their files, zero pages between them) while the Arc
                        // lives; before a column leaves its window or any of them stop holding
                        // rows, every buffer made here is detached.
                        unsafe { self.pack_views.create(env, ptr, len, pack)? }
                    }
                };
                pack_buffer = Some(value);
                // SAFETY: `value` is a live ArrayBuffer of this env.
                out.push(unsafe { Unknown::from_raw_unchecked(env.raw(), value) });
                continue;
            }
            let (region, offset, len) = v.column_region(i);
            let ptr = region.base().wrapping_add(offset);
            // SAFETY: the `capacity * row_size` bytes from `offset` on in a column's reservation
            // are mapped read-write to its file (MmapVec's invariant) and stay mapped while the
            // Arc lives; before any of them stop holding rows, `detach` runs on every buffer made
            // here.
            let value = unsafe { views.create(env, ptr, len, region)? };
            // SAFETY: `value` was just created in this env.
            out.push(unsafe { Unknown::from_raw_unchecked(env.raw(), value) });
        }
        Ok(out)
    }

    /// Where each column's rows start in the buffer [`column_buffers`](Self::column_buffers)
    /// gives for it (stored order): 0, or the column's place in its pack.
    pub fn column_offsets(&self) -> napi::Result<Vec<f64>> {
        let v = self.vec()?;
        Ok((0..self.column_views.len())
            .map(|i| v.column_pack(i).map_or(0.0, |(_, at)| at as f64))
            .collect())
    }

    /// Overlay mode: the header's memory, with the header file mapped over its start (the row
    /// count is an f64 at [`header_length_offset`](Self::header_length_offset)).
    pub fn overlay_header<'e>(&mut self, env: &'e Env) -> napi::Result<Unknown<'e>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        if self.header_overlay.is_none() {
            let (file, size) = v.header_file();
            let len = mmapvec_core::sys::round_up(size, mmapvec_core::sys::page_size()).unwrap_or(size);
            // The last page may pass the file's end; only bytes past the end of that page would
            // fault, and the header's bytes end before it.
            self.header_overlay = Some(Overlay::attach(env, file, len, v.map_mode())?);
        }
        let value = self.header_overlay.as_ref().map(|o| o.buffer(env)).transpose()?;
        // SAFETY: `value` was just read in this env.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value.unwrap_or(ptr::null_mut())) })
    }

    /// Overlay mode: one memory per stored column with the column file mapped over its start,
    /// covering `capacity` rows (they start at the column's offset). A column whose capacity
    /// changed gets a new memory, and the old one's views are detached; all or nothing: when a
    /// new memory cannot be made, every column keeps its old one.
    pub fn overlay_columns<'e>(&mut self, env: &'e Env) -> napi::Result<Vec<Unknown<'e>>> {
        let marked = self.marked(env);
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let mut fresh = Vec::new();
        for i in 0..self.column_overlays.len() {
            let (file, len) = v.column_file(i);
            if matches!(&self.column_overlays[i], Some(o) if o.len == len) {
                continue;
            }
            match Overlay::attach(env, &file, len, v.map_mode()) {
                Ok(o) => fresh.push((i, o)),
                Err(e) => {
                    for (_, o) in fresh {
                        o.detach(env, true, marked);
                    }
                    return Err(e);
                }
            }
        }
        for (i, o) in fresh {
            if let Some(old) = self.column_overlays[i].replace(o) {
                old.detach(env, true, marked);
            }
        }
        let mut out = Vec::with_capacity(self.column_overlays.len());
        for o in self.column_overlays.iter().flatten() {
            let value = o.buffer(env)?;
            // SAFETY: `value` was just read in this env.
            out.push(unsafe { Unknown::from_raw_unchecked(env.raw(), value) });
        }
        Ok(out)
    }

    /// Overlay mode: where the runtime has it, `worker_threads.isMarkedAsUntransferable`, which
    /// overlay memories ask before detaching their views (see [`Overlay::detach`]).
    pub fn ask_marks(&mut self, env: &Env, is_marked: Unknown) -> napi::Result<()> {
        let raw = env.raw();
        let is_marked = is_marked.raw();
        let mut kind = sys::ValueType::napi_undefined;
        // SAFETY: a plain Node-API query on a live value of this env.
        let status = unsafe { sys::napi_typeof(raw, is_marked, &mut kind) };
        check(status, "reading a function")?;
        if kind != sys::ValueType::napi_function {
            return Err(js_error(Error::new(
                Code::Invalid,
                "isMarkedAsUntransferable must be a function",
            )));
        }
        let mut r = ptr::null_mut();
        // SAFETY: a live value of this env; a count of 1 makes the reference strong.
        let status = unsafe { sys::napi_create_reference(raw, is_marked, 1, &mut r) };
        check(status, "keeping a function")?;
        self.forget_marks(env);
        self.marked = Some(r);
        Ok(())
    }

    fn forget_marks(&mut self, env: &Env) {
        if let Some(r) = self.marked.take() {
            // SAFETY: a live reference of this env, deleted once (taken).
            unsafe { sys::napi_delete_reference(env.raw(), r) };
        }
    }

    /// The function [`ask_marks`](Self::ask_marks) kept, if any.
    fn marked(&self, env: &Env) -> Option<sys::napi_value> {
        let r = self.marked?;
        let mut f = ptr::null_mut();
        // SAFETY: `r` is a live strong reference of this env.
        let ok = unsafe { sys::napi_get_reference_value(env.raw(), r, &mut f) } == sys::Status::napi_ok;
        (ok && !f.is_null()).then_some(f)
    }

    /// Puts anonymous memory back in every overlay and detaches their views.
    fn detach_overlays(&mut self, env: &Env, can_run_js: bool) {
        let marked = self.marked(env);
        if let Some(o) = self.header_overlay.take() {
            o.detach(env, can_run_js, marked);
        }
        for o in self.column_overlays.iter_mut().filter_map(Option::take) {
            o.detach(env, can_run_js, marked);
        }
    }

    /// Buffered mode: copies column `i` into `dst`, a buffer V8 allocated.
    pub fn read_column(&self, i: usize, dst: &mut Uint8Array) -> napi::Result<()> {
        let v = self.vec()?;
        // SAFETY: `dst` is a V8-owned buffer kept alive by the caller's argument for this call,
        // and JavaScript cannot run while this function does, so nothing else touches it.
        let bytes = unsafe { dst.as_mut() };
        v.read_column(i, bytes).map_err(js_error)
    }

    /// Buffered mode: copies `src` (a buffer V8 allocated) into column `i` and sets the row
    /// count, so that a flush makes them durable.
    pub fn write_column(&mut self, i: usize, src: &Uint8Array) -> napi::Result<()> {
        self.vec_mut()?.write_column(i, src).map_err(js_error)
    }

    /// Writes whole rows of column `i` through the file (see [`MmapVec::write_rows`]).
    pub fn write_rows(&mut self, i: usize, first_row: u64, src: &[u8]) -> napi::Result<()> {
        self.vec_mut()?.write_rows(i, first_row, src).map_err(js_error)
    }

    pub fn set_len(&mut self, n: u64) -> napi::Result<()> {
        self.vec_mut()?.set_len(n).map_err(js_error)
    }

    /// Grows to at least `min_capacity` rows; views of columns that had to move are detached.
    /// Returns the new capacity.
    pub fn grow(&mut self, env: &Env, min_capacity: u64, geometric: bool) -> napi::Result<u64> {
        let v = self.vec_mut()?;
        let growth = v.grow(min_capacity, geometric).map_err(js_error)?;
        Ok(self.after_growth(env, growth))
    }

    /// As [`grow`](Self::grow) geometrically, for rows [`write_rows`](Self::write_rows) will
    /// write (see [`MmapVec::grow_for_writes`]).
    pub fn grow_for_writes(&mut self, env: &Env, min_capacity: u64) -> napi::Result<u64> {
        let v = self.vec_mut()?;
        let growth = v.grow_for_writes(min_capacity).map_err(js_error)?;
        Ok(self.after_growth(env, growth))
    }

    fn after_growth(&mut self, env: &Env, growth: mmapvec_core::Growth) -> u64 {
        for i in growth.moved {
            self.column_views[i].detach_all(env, true);
        }
        // Growth moves every column out of its pack.
        if self.inner.as_ref().is_some_and(|v| !v.is_packed()) {
            self.pack_views.detach_all(env, true);
        }
        self.inner.as_ref().map_or(0, MmapVec::capacity)
    }

    /// Shrinks the files to the rows in use. Every column view is detached first.
    pub fn shrink_to_fit(&mut self, env: &Env) -> napi::Result<u64> {
        let marked = self.marked(env);
        self.vec_mut()?;
        for views in &mut self.column_views {
            views.detach_all(env, false);
        }
        self.pack_views.detach_all(env, false);
        // Overlays map pages the file is about to lose (a touch there would raise SIGBUS).
        for o in self.column_overlays.iter_mut().filter_map(Option::take) {
            o.detach(env, true, marked);
        }
        let v = self.vec_mut()?;
        v.shrink_to_fit().map_err(js_error)?;
        Ok(v.capacity())
    }

    /// Runs a schema change, then brings the views in line with whatever it left (a change
    /// can fail after its commit point, when making it durable): views of a dropped column and
    /// of a replaced header are detached; columns keep their views by file, whatever their
    /// new position. Returns the change's result.
    pub fn change_schema(
        &mut self,
        env: &Env,
        change: impl FnOnce(&mut MmapVec) -> mmapvec_core::Result<()>,
    ) -> napi::Result<()> {
        self.vec_mut()?;
        let marked = self.marked(env);
        let v = self.inner.as_mut().ok_or_else(closed)?;
        let files: Vec<String> = v.schema().columns.iter().map(|c| c.file.clone()).collect();
        let header = v.header_region().0;
        let packed = |v: &MmapVec| {
            (0..v.schema().columns.len())
                .filter(|&i| v.column_pack(i).is_some())
                .count()
        };
        let packed_before = packed(v);
        let result = change(v);
        // A dropped column's window goes back to zero pages: its views share the pack's
        // buffer with the other columns', so all of them are revoked together.
        if packed(v) < packed_before {
            // The pack still holds the other columns' rows.
            self.pack_views.detach_all(env, false);
        }
        if !Arc::ptr_eq(&header, &v.header_region().0) {
            self.header_views.detach_all(env, true);
            if let Some(o) = self.header_overlay.take() {
                o.detach(env, true, marked);
            }
        }
        let mut old: Vec<(String, Views, Option<Overlay>)> = files
            .into_iter()
            .zip(self.column_views.drain(..))
            .zip(self.column_overlays.drain(..))
            .map(|((f, views), o)| (f, views, o))
            .collect();
        for c in &v.schema().columns {
            let (views, overlay) = match old.iter().position(|(f, _, _)| *f == c.file) {
                Some(k) => {
                    let (_, views, o) = old.swap_remove(k);
                    (views, o)
                }
                None => (Views::default(), None),
            };
            self.column_views.push(views);
            self.column_overlays.push(overlay);
        }
        for (_, mut views, overlay) in old {
            views.detach_all(env, true);
            if let Some(o) = overlay {
                o.detach(env, true, marked);
            }
        }
        result.map_err(js_error)
    }

    pub fn prefetch(&mut self, start: u64, end: u64) -> napi::Result<()> {
        self.vec_mut()?.prefetch(start, end).map_err(js_error)
    }

    pub fn sync_job(&mut self) -> napi::Result<SyncJob> {
        Ok(self.vec_mut()?.sync_job())
    }

    pub fn flush(&mut self) -> napi::Result<()> {
        self.vec_mut()?.flush().map_err(js_error)
    }

    /// Detaches every view, lets go of the column files (see [`MmapVec::unmap_columns`]), then
    /// closes the files and releases the lock. The header's mapping goes when the last
    /// ArrayBuffer over it is collected.
    pub fn close(&mut self, env: &Env) {
        self.forget_write_back();
        self.header_views.detach_all(env, true);
        for views in &mut self.column_views {
            views.detach_all(env, true);
        }
        self.pack_views.detach_all(env, true);
        self.detach_overlays(env, true);
        self.forget_marks(env);
        if let Some(v) = self.inner.as_mut() {
            v.unmap_columns();
            v.unguard();
        }
        self.inner = None;
    }

    /// For the garbage collector's finalizer, where JavaScript cannot run: releases the lock and
    /// the references; views still alive keep their memory mapped and valid (overlay mode, and a
    /// packed vec's windows: their memory gets zero pages back, so they read zeros and no longer
    /// reach the files).
    pub fn release(&mut self, env: &Env) {
        self.forget_write_back();
        self.header_views.forget(env);
        for views in &mut self.column_views {
            views.forget(env);
        }
        self.pack_views.forget(env);
        self.detach_overlays(env, false);
        self.forget_marks(env);
        self.inner = None;
    }
}

/// Buffered mode keeps a vec's rows in V8's memory until the facade writes them back, at a
/// flush, a close, its vec's collection or the process's `exit` event. A worker thread ended
/// from outside (`worker.terminate()`, or `process.exit()` in the main thread, which ends every
/// worker) runs no JavaScript any more, so none of those fire; Node still runs its environment
/// cleanup hooks, in reverse order of registration, so one added here runs before Node-API
/// finalizes the environment's references. The hook copies the rows into the mapped files
/// (their pages are the page cache's once written, as after any write-back) and closes the vec.
#[derive(Debug)]
struct WriteBack {
    env: sys::napi_env,
    /// The hook's argument: the address of the `NodeVec` that registered it.
    arg: *mut c_void,
    /// Strong references: the row count's `Float64Array` (the count at index 0), and each
    /// stored column's full-capacity TypedArray, by stored column index.
    length: sys::napi_ref,
    columns: Vec<(usize, sys::napi_ref)>,
}

unsafe extern "C" fn write_back_at_teardown(arg: *mut c_void) {
    // SAFETY: `arg` is the `NodeVec` that registered this hook, still at that address: a
    // registered `NodeVec` is the one inside napi-rs's wrapped object, which stays boxed until
    // its finalizer, and `forget_write_back` (in `close`, `release` and `Drop`) removes the hook
    // before it can move or go. Hooks run on the environment's own thread, where no call into
    // the vec can be running.
    let nv = unsafe { &mut *arg.cast::<NodeVec>() };
    nv.teardown();
}

/// A TypedArray's bytes, or `None` when its buffer is detached.
fn typed_array_bytes(env: &Env, r: sys::napi_ref) -> napi::Result<Option<(*const u8, usize)>> {
    let raw = env.raw();
    let mut value = ptr::null_mut();
    // SAFETY: `r` is a live strong reference of this env.
    let status = unsafe { sys::napi_get_reference_value(raw, r, &mut value) };
    check(status, "reading a buffered column")?;
    let mut ty = 0;
    let mut n = 0usize;
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut offset = 0usize;
    // SAFETY: `value` is a live value of this env (checked to be a TypedArray at registration).
    let status = unsafe {
        sys::napi_get_typedarray_info(raw, value, &mut ty, &mut n, &mut data, &mut buffer, &mut offset)
    };
    check(status, "reading a buffered column")?;
    if is_detached(env, buffer) || data.is_null() {
        return Ok(None);
    }
    let mut whole = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: `buffer` is the live ArrayBuffer under the TypedArray.
    let status = unsafe { sys::napi_get_arraybuffer_info(raw, buffer, &mut whole, &mut len) };
    check(status, "reading a buffered column")?;
    Ok(Some((data.cast::<u8>().cast_const(), len.saturating_sub(offset))))
}

impl NodeVec {
    /// Buffered mode: what the environment's teardown writes back while the vec is open (see
    /// [`WriteBack`]): `length` is the `Float64Array` holding the row count, `columns` each
    /// stored column's index and its TypedArray. Replaces an earlier registration; `close` and
    /// `release` remove it.
    pub fn keep_for_teardown(
        &mut self,
        env: &Env,
        length: Unknown,
        columns: &[(usize, Unknown)],
    ) -> napi::Result<()> {
        let length = length.raw();
        let columns: Vec<(usize, sys::napi_value)> = columns.iter().map(|&(i, c)| (i, c.raw())).collect();
        let v = self.vec()?;
        if columns.iter().any(|&(i, _)| i >= v.schema().columns.len()) {
            return Err(js_error(Error::new(Code::Invalid, "no such stored column")));
        }
        self.forget_write_back();
        let raw = env.raw();
        let is_typed = |value: sys::napi_value| {
            let mut yes = false;
            // SAFETY: a plain Node-API query on a live value of this env.
            let ok = unsafe { sys::napi_is_typedarray(raw, value, &mut yes) } == sys::Status::napi_ok;
            ok && yes
        };
        if !is_typed(length) || !columns.iter().all(|&(_, c)| is_typed(c)) {
            return Err(js_error(Error::new(
                Code::Invalid,
                "buffered columns must be TypedArrays",
            )));
        }
        let strong = |value: sys::napi_value| -> napi::Result<sys::napi_ref> {
            let mut r = ptr::null_mut();
            // SAFETY: `value` is a live value of this env; a count of 1 makes the reference strong.
            let status = unsafe { sys::napi_create_reference(raw, value, 1, &mut r) };
            check(status, "keeping a buffered column")?;
            Ok(r)
        };
        let mut made = Vec::with_capacity(columns.len());
        let refs = (|| -> napi::Result<sys::napi_ref> {
            for &(i, c) in &columns {
                made.push((i, strong(c)?));
            }
            strong(length)
        })();
        let arg = (self as *mut NodeVec).cast::<c_void>();
        let hooked = refs.as_ref().is_ok_and(|_| {
            // SAFETY: the hook and its argument follow `write_back_at_teardown`'s rules: the
            // hook is removed in `forget_write_back` before this `NodeVec` moves or goes.
            let status = unsafe { sys::napi_add_env_cleanup_hook(raw, Some(write_back_at_teardown), arg) };
            status == sys::Status::napi_ok
        });
        match refs {
            Ok(length) if hooked => {
                self.write_back = Some(WriteBack {
                    env: raw,
                    arg,
                    length,
                    columns: made,
                });
                Ok(())
            }
            other => {
                let mut all: Vec<sys::napi_ref> = made.into_iter().map(|(_, r)| r).collect();
                all.extend(other.as_ref().ok().copied());
                for r in all {
                    // SAFETY: made above in this env, deleted once.
                    unsafe { sys::napi_delete_reference(raw, r) };
                }
                other.and(Err(js_error(Error::new(
                    Code::Io,
                    "could not register the write-back at the environment's teardown",
                ))))
            }
        }
    }

    /// Removes the teardown hook and lets go of the buffers it would have written back.
    fn forget_write_back(&mut self) {
        let Some(wb) = self.write_back.take() else {
            return;
        };
        // SAFETY: the hook was added in this env with exactly this function and argument;
        // removing a hook that already ran is a no-op. The references are live strong ones of
        // this env, deleted once (`wb` was taken).
        unsafe {
            sys::napi_remove_env_cleanup_hook(wb.env, Some(write_back_at_teardown), wb.arg);
            for (_, r) in wb.columns {
                sys::napi_delete_reference(wb.env, r);
            }
            sys::napi_delete_reference(wb.env, wb.length);
        }
    }

    /// The environment is being torn down with the vec open: writes its rows back, then lets go
    /// of everything as the collector's finalizer would (JavaScript can no longer run).
    fn teardown(&mut self) {
        let Some(raw) = self.write_back.as_ref().map(|wb| wb.env) else {
            return;
        };
        let env = Env::from_raw(raw);
        let mut scope = ptr::null_mut();
        // SAFETY: plain Node-API call on the live env whose cleanup hook is running.
        let opened = unsafe { sys::napi_open_handle_scope(raw, &mut scope) } == sys::Status::napi_ok;
        if let Err(e) = self.copy_back(&env) {
            let path = self.inner.as_ref().map(|v| v.path().display().to_string());
            eprintln!(
                "mmapvec: {}: the rows of a buffered vec left open in a thread that was terminated could not be written back: {}",
                path.unwrap_or_default(),
                e.reason
            );
        }
        if opened {
            // SAFETY: the scope opened above, closed once.
            unsafe { sys::napi_close_handle_scope(raw, scope) };
        }
        self.release(&env);
    }

    /// Copies the registered buffers' rows into the files and stores the row count; nothing if
    /// one was detached (its rows left with it, as the facade's write-back refuses too).
    fn copy_back(&mut self, env: &Env) -> napi::Result<()> {
        let Some(wb) = self.write_back.as_ref() else {
            return Ok(());
        };
        let count = typed_array_bytes(env, wb.length)?
            .filter(|&(_, n)| n >= 8)
            // SAFETY: at least 8 bytes of the live Float64Array's memory; no JavaScript runs.
            .map(|(p, _)| unsafe { p.cast::<f64>().read_unaligned() });
        let mut columns = Vec::with_capacity(wb.columns.len());
        for &(i, r) in &wb.columns {
            columns.push((i, typed_array_bytes(env, r)?));
        }
        let (Some(count), true) = (count, columns.iter().all(|(_, c)| c.is_some())) else {
            return Err(js_error(Error::new(
                Code::Invalid,
                "a column's buffer was detached by the program",
            )));
        };
        let v = self.vec_mut()?;
        if !(count >= 0.0 && count <= v.capacity() as f64 && count.fract() == 0.0) {
            return Err(js_error(Error::new(
                Code::Invalid,
                format!("the row count {count} is not within the capacity"),
            )));
        }
        let rows = count as usize;
        for (i, c) in columns {
            let (p, n) = c.unwrap_or((ptr::null(), 0));
            let bytes = (rows * v.schema().columns[i].row_size()).min(n);
            // SAFETY: `[p, p + bytes)` lies within the live buffer (`n` bytes from `p`), which
            // V8 allocated and the strong reference keeps; no JavaScript runs meanwhile.
            let src = unsafe { std::slice::from_raw_parts(p, bytes) };
            v.write_column(i, src).map_err(js_error)?;
        }
        v.set_len(count as u64).map_err(js_error)
    }
}

impl Drop for NodeVec {
    fn drop(&mut self) {
        // Normally gone already (`close`, `release`); the hook must never outlive its argument.
        self.forget_write_back();
    }
}
