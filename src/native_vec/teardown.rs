//! Buffered mode's write-back at the environment's teardown.
//!
//! Buffered mode keeps a vec's rows in V8's memory until the facade writes them back, at a
//! flush, a close, its vec's collection or the process's `exit` event. A worker thread ended
//! from outside (`worker.terminate()`, or `process.exit()` in the main thread, which ends every
//! worker) runs no JavaScript any more, so none of those fire; Node still runs its environment
//! cleanup hooks, in reverse order of registration, so one added here runs before Node-API
//! finalizes the environment's references. The hook copies the rows into the mapped files
//! (their pages are the page cache's once written, as after any write-back) and closes the vec.
//!
//! ## Safety rules
//! - The hook's argument is the address of the [`NativeVec`] that registered it: the one inside
//!   napi-rs's wrapped object, boxed when `NativeVec.open` returned and before JavaScript could
//!   call `keepForTeardown` on it (napi-rs calls methods on the boxed value). It stays at that
//!   address until napi-rs's finalizer takes it out of the box to call `finalize`, whose first
//!   step (`release`) drops the [`WriteBack`] and so removes the hook; nothing can run the hook
//!   in between, as both happen on the environment's thread. `close` drops the `WriteBack` as
//!   well, and so does dropping the `NativeVec` (it is one of its fields). The hook never runs
//!   on a `NativeVec` that moved or went.
//! - Hooks run on the environment's own thread, where no call into the vec can be running, so
//!   the `&mut NativeVec` the hook makes is the only reference to it.
//! - The buffers' bytes are read only while the hook runs, when no JavaScript runs, through the
//!   strong references that keep the buffers alive.

use std::ffi::c_void;
use std::ptr;

use mmapvec_core::{Code, Error, MmapVec};
use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};

use super::NativeVec;
use crate::error::js_error;
use crate::napi_calls::{self, failed, HandleScope, Ref};

/// What to write back if the environment is torn down with the vec open; dropping it removes
/// the cleanup hook and lets go of the buffers.
#[derive(Debug)]
pub(super) struct WriteBack {
    env: sys::napi_env,
    /// The hook's argument: the address of the `NativeVec` that registered it.
    arg: *mut c_void,
    /// Strong references: each stored column's full-capacity TypedArray, by the column's file
    /// (a file keeps its column's type for good, while positions move when a column is dropped,
    /// and a thread can be ended between a schema change and the facade's next registration),
    /// and the row count's `Float64Array` (the count at index 0).
    columns: Vec<(String, Ref)>,
    length: Ref,
}

/// The cleanup hook: writes the vec back and closes it.
///
/// # Safety
/// Only Node-API calls it, as the environment is torn down, with the argument it was registered
/// with: a `NativeVec` that follows the module's rules.
unsafe extern "C" fn write_back_at_teardown(arg: *mut c_void) {
    // SAFETY: `arg` is the `NativeVec` that registered this hook, still at that address and
    // borrowed nowhere else (the module's rules).
    let nv = unsafe { &mut *arg.cast::<NativeVec>() };
    nv.teardown();
}

impl Drop for WriteBack {
    fn drop(&mut self) {
        // SAFETY: the hook was added in this env with exactly this function and argument;
        // removing a hook that already ran is a no-op. The references go with the fields.
        unsafe { sys::napi_remove_env_cleanup_hook(self.env, Some(write_back_at_teardown), self.arg) };
    }
}

impl NativeVec {
    /// Buffered mode: what the environment's teardown writes back while the vec is open (see
    /// [`WriteBack`]): `length` is the `Float64Array` holding the row count, `columns` each
    /// stored column's index and its TypedArray. Replaces an earlier registration; `close` and
    /// `release` remove it.
    pub(super) fn keep_buffers(
        &mut self,
        env: &Env,
        length: Unknown,
        columns: &[(usize, Unknown)],
    ) -> crate::error::Result<()> {
        let stored = &self.vec()?.schema().columns;
        let files = columns
            .iter()
            .map(|&(i, _)| stored.get(i).map(|c| c.file.clone()))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| js_error(Error::new(Code::Invalid, "no such stored column")))?;
        // A hook is registered once per function and argument: the earlier one goes first.
        self.write_back = None;
        let is_typed = |value| napi_calls::is_typedarray(env, value);
        if !is_typed(length) || !columns.iter().all(|&(_, c)| is_typed(c)) {
            return Err(js_error(Error::new(
                Code::Invalid,
                "buffered columns must be TypedArrays",
            )));
        }
        let what = "keeping a buffered column";
        let columns = columns
            .iter()
            .zip(files)
            .map(|(&(_, c), file)| Ok((file, Ref::strong(env, c, what)?)))
            .collect::<crate::error::Result<Vec<_>>>()?;
        let length = Ref::strong(env, length, what)?;
        let arg = (self as *mut NativeVec).cast::<c_void>();
        // SAFETY: the hook and its argument follow the module's rules: `self` is the boxed
        // `NativeVec` JavaScript called, and the hook is removed when the `WriteBack` made here
        // is dropped.
        let status = unsafe { sys::napi_add_env_cleanup_hook(env.raw(), Some(write_back_at_teardown), arg) };
        if status != sys::Status::napi_ok {
            return Err(js_error(Error::new(
                Code::Io,
                "could not register the write-back at the environment's teardown",
            )));
        }
        self.write_back = Some(WriteBack {
            env: env.raw(),
            arg,
            columns,
            length,
        });
        Ok(())
    }

    /// The environment is being torn down with the vec open: writes its rows back, then lets go
    /// of everything as the collector's finalizer would (JavaScript can no longer run).
    fn teardown(&mut self) {
        let Some(wb) = self.write_back.take() else {
            return;
        };
        let env = Env::from_raw(wb.env);
        let scope = HandleScope::open(&env);
        // A panic must not unwind out of a hook Node called (that aborts the process).
        let copied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.vec_mut().and_then(|v| wb.copy_into(&env, v))
        }))
        .unwrap_or_else(|_| {
            Err(js_error(Error::new(
                Code::Io,
                "the write-back failed unexpectedly",
            )))
        });
        if let Err(e) = copied {
            let path = self.inner.as_ref().map(|v| v.path().display().to_string());
            eprintln!(
                "mmapvec: {}: the rows of a buffered vec left open in a thread that was terminated could not be written back: {}",
                path.unwrap_or_default(),
                e.reason
            );
        }
        drop(scope);
        drop(wb);
        self.release(&env);
    }
}

impl WriteBack {
    /// Copies the registered buffers' rows into the files and stores the row count; nothing if
    /// one was detached (its rows left with it, as the facade's write-back refuses too).
    fn copy_into(&self, env: &Env, v: &mut MmapVec) -> crate::error::Result<()> {
        let count = typed_array_bytes(env, &self.length)?
            .filter(|&(_, n)| n >= 8)
            // SAFETY: at least 8 bytes of the live Float64Array's memory; no JavaScript runs.
            .map(|(p, _)| unsafe { p.cast::<f64>().read_unaligned() });
        let mut columns = Vec::with_capacity(self.columns.len());
        for (file, r) in &self.columns {
            // A column dropped since the registration is gone from the files too.
            let Some(i) = v.schema().columns.iter().position(|c| c.file == *file) else {
                continue;
            };
            columns.push((i, typed_array_bytes(env, r)?));
        }
        let (Some(count), true) = (count, columns.iter().all(|(_, c)| c.is_some())) else {
            return Err(js_error(Error::new(
                Code::Invalid,
                "a column's buffer was detached by the program",
            )));
        };
        if !(count >= 0.0 && count <= v.capacity() as f64 && count.fract() == 0.0) {
            return Err(js_error(Error::new(
                Code::Invalid,
                format!("the row count {count} is not within the capacity"),
            )));
        }
        let rows = count as usize;
        // One unit for readers beside the writer, ended whatever happens.
        v.begin_unit();
        let done = Self::copy_back(v, columns, rows).and_then(|()| v.set_len(count as u64).map_err(js_error));
        v.end_unit();
        done
    }

    /// Copies each column's first `rows` rows from its buffer into the mapping.
    fn copy_back(
        v: &mut MmapVec,
        columns: Vec<(usize, Option<(*const u8, usize)>)>,
        rows: usize,
    ) -> crate::error::Result<()> {
        for (i, c) in columns {
            let (p, n) = c.unwrap_or((ptr::null(), 0));
            let bytes = (rows * v.schema().columns[i].row_size()).min(n);
            if bytes == 0 {
                continue;
            }
            // SAFETY: `[p, p + bytes)` lies within the live buffer (`n` bytes from `p`, and `p`
            // is not null since `n` > 0), which V8 allocated and the strong reference keeps; no
            // JavaScript runs meanwhile.
            let src = unsafe { std::slice::from_raw_parts(p, bytes) };
            v.write_column(i, src).map_err(js_error)?;
        }
        Ok(())
    }
}

/// A TypedArray's bytes from its first element to its buffer's end, or `None` when its buffer
/// is detached. An empty buffer (a vec of capacity 0) may have no data pointer: 0 bytes.
fn typed_array_bytes(env: &Env, r: &Ref) -> crate::error::Result<Option<(*const u8, usize)>> {
    let what = "reading a buffered column";
    let value = r
        .value(env)
        .ok_or_else(|| failed(sys::Status::napi_generic_failure, what))?;
    let (data, buffer, offset) = napi_calls::typedarray_info(env, value)?;
    if napi_calls::is_detached(env, buffer) {
        return Ok(None);
    }
    if data.is_null() {
        return Ok(Some((ptr::null(), 0)));
    }
    let (_, len) = napi_calls::arraybuffer_info(env, buffer)?;
    Ok(Some((data.cast_const(), len.saturating_sub(offset))))
}
