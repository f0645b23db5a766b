//! Handing mapped memory to JavaScript, and taking it back (feature `node`).
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

use std::any::Any;
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{Uint8Array, Unknown};
use napi::{sys, Env, Status};

use crate::error::{Code, Error};
use crate::schema::Schema;
use crate::vec::{MmapVec, OpenOptions, SyncJob};
use std::path::Path;

/// Turns a core error into the JavaScript error the facade recognises: the message starts with
/// the stable code (`"ELOCKED: ..."`), which the facade moves into `err.code`.
pub fn js_error(e: Error) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("{}: {}", e.code.as_str(), e.message),
    )
}

type Keep = Arc<dyn Any + Send + Sync>;

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

/// Weak references to the ArrayBuffers made over one mapping, so they can be detached later.
#[derive(Debug, Default)]
struct Views {
    refs: Vec<sys::napi_ref>,
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
        self.refs.push(r);
        Ok(value)
    }

    /// Forgets references whose ArrayBuffer was collected already.
    fn prune(&mut self, env: &Env) {
        self.refs.retain(|&r| {
            let mut v = ptr::null_mut();
            // SAFETY: `r` is a live reference created in this env and not yet deleted.
            let alive = unsafe { sys::napi_get_reference_value(env.raw(), r, &mut v) }
                == sys::Status::napi_ok
                && !v.is_null();
            if !alive {
                // SAFETY: as above; it is removed from the list, so it is deleted once.
                unsafe { sys::napi_delete_reference(env.raw(), r) };
            }
            alive
        });
    }

    /// Detaches every ArrayBuffer still alive: every view over it becomes length 0.
    fn detach_all(&mut self, env: &Env) {
        for r in self.refs.drain(..) {
            let mut v = ptr::null_mut();
            // SAFETY: `r` is a live reference created in this env; it is deleted right after.
            unsafe {
                if sys::napi_get_reference_value(env.raw(), r, &mut v) == sys::Status::napi_ok && !v.is_null()
                {
                    sys::napi_detach_arraybuffer(env.raw(), v);
                }
                sys::napi_delete_reference(env.raw(), r);
            }
        }
    }

    /// Deletes the references without detaching (the views stay valid: their finalizers keep
    /// the memory mapped).
    fn forget(&mut self, env: &Env) {
        for r in self.refs.drain(..) {
            // SAFETY: `r` is a live reference created in this env, deleted once.
            unsafe { sys::napi_delete_reference(env.raw(), r) };
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
        })
    }

    pub fn vec(&self) -> napi::Result<&MmapVec> {
        self.inner.as_ref().ok_or_else(closed)
    }

    fn vec_mut(&mut self) -> napi::Result<&mut MmapVec> {
        self.inner.as_mut().ok_or_else(closed)
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

    /// One ArrayBuffer per column (stored order), each covering `capacity` rows.
    pub fn column_buffers<'e>(&mut self, env: &'e Env) -> napi::Result<Vec<Unknown<'e>>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let mut out = Vec::with_capacity(self.column_views.len());
        for (i, views) in self.column_views.iter_mut().enumerate() {
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

    pub fn set_len(&mut self, n: u64) -> napi::Result<()> {
        self.vec_mut()?.set_len(n).map_err(js_error)
    }

    /// Grows to at least `min_capacity` rows; views of columns that had to move are detached.
    /// Returns the new capacity.
    pub fn grow(&mut self, env: &Env, min_capacity: u64, geometric: bool) -> napi::Result<u64> {
        let v = self.inner.as_mut().ok_or_else(closed)?;
        let growth = v.grow(min_capacity, geometric).map_err(js_error)?;
        let cap = v.capacity();
        for i in growth.moved {
            self.column_views[i].detach_all(env);
        }
        Ok(cap)
    }

    /// Shrinks the files to the rows in use. Every column view is detached first.
    pub fn shrink_to_fit(&mut self, env: &Env) -> napi::Result<u64> {
        self.vec()?;
        for views in &mut self.column_views {
            views.detach_all(env);
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
        change: impl FnOnce(&mut MmapVec) -> crate::Result<()>,
    ) -> napi::Result<()> {
        let v = self.inner.as_mut().ok_or_else(closed)?;
        let files: Vec<String> = v.schema().columns.iter().map(|c| c.file.clone()).collect();
        let header = v.header_region().0;
        let result = change(v);
        if !Arc::ptr_eq(&header, &v.header_region().0) {
            self.header_views.detach_all(env);
        }
        let mut old: Vec<(String, Views)> = files.into_iter().zip(self.column_views.drain(..)).collect();
        self.column_views = v
            .schema()
            .columns
            .iter()
            .map(|c| match old.iter().position(|(f, _)| *f == c.file) {
                Some(k) => old.swap_remove(k).1,
                None => Views::default(),
            })
            .collect();
        for (_, mut views) in old {
            views.detach_all(env);
        }
        result.map_err(js_error)
    }

    pub fn prefetch(&self, start: u64, end: u64) -> napi::Result<()> {
        self.vec()?.prefetch(start, end).map_err(js_error)
    }

    pub fn sync_job(&mut self) -> napi::Result<SyncJob> {
        Ok(self.vec_mut()?.sync_job())
    }

    pub fn flush(&mut self) -> napi::Result<()> {
        self.vec_mut()?.flush().map_err(js_error)
    }

    /// Detaches every view, then closes the files and releases the lock. The mappings go when
    /// the last ArrayBuffer over them is collected.
    pub fn close(&mut self, env: &Env) {
        self.header_views.detach_all(env);
        for views in &mut self.column_views {
            views.detach_all(env);
        }
        self.inner = None;
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_none()
    }

    /// For the garbage collector's finalizer, where JavaScript cannot run: releases the lock and
    /// the references; views still alive keep their memory mapped and valid.
    pub fn release(&mut self, env: &Env) {
        self.header_views.forget(env);
        for views in &mut self.column_views {
            views.forget(env);
        }
        self.inner = None;
    }
}
