//! The raw Node-API calls the binding makes itself, behind safe functions: napi-rs's own
//! wrappers copy, convert or type-check where these must not (see `views.rs` and `overlay.rs`).
//!
//! ## Safety rules
//! - Every call runs on the JavaScript thread of the `Env` it is given: in a call from
//!   JavaScript, in a finalizer, or in an environment cleanup hook that opened a
//!   [`HandleScope`].
//! - Values are napi-rs's `Unknown<'e>`, made only from what Node-API has just returned in that
//!   env (here, in [`made`]) or from napi-rs's arguments, and used only during the call that got
//!   them: their lifetime ties them to that call's `&Env`. A value kept across calls is a
//!   [`Ref`], which deletes its reference once, when it is dropped.
//!
//! With those, each function below is a Node-API call on a live env with live values, which is
//! all Node-API asks of its caller; its `SAFETY` comment says what else the call relies on.

use std::ffi::CStr;
use std::ptr;

use napi::bindgen_prelude::{Uint8Array, Unknown};
use napi::{sys, Env, JsValue, ValueType};

/// Fails with an EIO error naming `what` when a Node-API call did not return `napi_ok`.
pub(crate) fn check(status: sys::napi_status, what: &str) -> crate::error::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(failed(status, what))
    }
}

/// The EIO error of a Node-API call that returned `status` while doing `what`.
pub(crate) fn failed(status: sys::napi_status, what: &str) -> crate::error::JsError {
    crate::error::JsError::new(
        crate::error::ErrorCode::Io,
        format!("Node-API call failed while {what} (status {status})"),
    )
}

/// Runs `call`, a Node-API call in `env`'s raw env that writes one value into its
/// out-parameter, and gives that value.
///
/// # Safety
/// `call` must be such a call: on `napi_ok`, what it wrote must be a value of that env.
unsafe fn made<'e>(
    env: &'e Env,
    what: &str,
    call: impl FnOnce(sys::napi_env, *mut sys::napi_value) -> sys::napi_status,
) -> crate::error::Result<Unknown<'e>> {
    let mut out = ptr::null_mut();
    check(call(env.raw(), &mut out), what)?;
    // SAFETY: the caller's promise: Node-API just wrote `out`, a value of this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), out) })
}

/// The global object.
pub(crate) fn global(env: &Env) -> crate::error::Result<Unknown<'_>> {
    // SAFETY: `napi_get_global` writes one value of the env.
    unsafe {
        made(env, "reading the global object", |raw, out| {
            sys::napi_get_global(raw, out)
        })
    }
}

/// `obj[name]`, for a property that holds a value.
pub(crate) fn property<'e>(env: &'e Env, obj: Unknown<'e>, name: &CStr) -> crate::error::Result<Unknown<'e>> {
    // SAFETY: `name` is NUL-terminated; the call writes one value of the env.
    unsafe {
        made(env, "reading a property", |raw, out| {
            sys::napi_get_named_property(raw, obj.raw(), name.as_ptr(), out)
        })
    }
}

/// `globalThis.a.b...`, for `path` `[a, b, ...]`.
pub(crate) fn global_path<'e>(env: &'e Env, path: &[&CStr]) -> crate::error::Result<Unknown<'e>> {
    path.iter()
        .try_fold(global(env)?, |obj, name| property(env, obj, name))
}

/// `obj[name] = value`.
pub(crate) fn set_property<'e>(
    env: &'e Env,
    obj: Unknown<'e>,
    name: &CStr,
    value: Unknown<'e>,
) -> crate::error::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    let status = unsafe { sys::napi_set_named_property(env.raw(), obj.raw(), name.as_ptr(), value.raw()) };
    check(status, "setting a property")
}

/// A new empty object.
pub(crate) fn object(env: &Env) -> crate::error::Result<Unknown<'_>> {
    // SAFETY: `napi_create_object` writes one value of the env.
    unsafe {
        made(env, "making an object", |raw, out| {
            sys::napi_create_object(raw, out)
        })
    }
}

/// `n` as a JavaScript number.
pub(crate) fn uint32(env: &Env, n: u32) -> crate::error::Result<Unknown<'_>> {
    // SAFETY: `napi_create_uint32` writes one value of the env.
    unsafe {
        made(env, "making a number", |raw, out| {
            sys::napi_create_uint32(raw, n, out)
        })
    }
}

/// `f.call(this, ...args)`; an error leaves the exception it threw pending (see
/// [`clear_exception`]).
pub(crate) fn call<'e, const N: usize>(
    env: &'e Env,
    this: Unknown<'e>,
    f: Unknown<'e>,
    args: [Unknown<'e>; N],
) -> crate::error::Result<Unknown<'e>> {
    let argv = args.map(|a| a.raw());
    // SAFETY: `argv` holds `N` live values and outlives the call, which writes one value.
    unsafe {
        made(env, "calling a function", |raw, out| {
            sys::napi_call_function(raw, this.raw(), f.raw(), N, argv.as_ptr(), out)
        })
    }
}

/// `new ctor(...args)`; an error leaves the exception it threw pending.
pub(crate) fn new_instance<'e, const N: usize>(
    env: &'e Env,
    ctor: Unknown<'e>,
    args: [Unknown<'e>; N],
) -> crate::error::Result<Unknown<'e>> {
    let argv = args.map(|a| a.raw());
    // SAFETY: as in `call`.
    unsafe {
        made(env, "making an object", |raw, out| {
            sys::napi_new_instance(raw, ctor.raw(), N, argv.as_ptr(), out)
        })
    }
}

/// Drops whatever exception a failed call into JavaScript left, so that our own error is the
/// one thrown.
pub(crate) fn clear_exception(env: &Env) {
    let mut e = ptr::null_mut();
    // SAFETY: writes the pending exception, if any, into `e`, which is then let go.
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut e) };
}

/// Whether `v` is a function (false when asking fails).
pub(crate) fn is_function(v: Unknown<'_>) -> bool {
    v.get_type().is_ok_and(|t| t == ValueType::Function)
}

/// A JavaScript boolean's value.
pub(crate) fn bool_value(env: &Env, v: Unknown<'_>) -> crate::error::Result<bool> {
    let mut yes = false;
    // SAFETY: writes the value into `yes` (or fails for a value that is not a boolean).
    let status = unsafe { sys::napi_get_value_bool(env.raw(), v.raw(), &mut yes) };
    check(status, "reading a boolean")?;
    Ok(yes)
}

/// Whether `v` is a TypedArray (false when asking fails).
pub(crate) fn is_typedarray(env: &Env, v: Unknown<'_>) -> bool {
    let mut yes = false;
    // SAFETY: writes the answer into `yes`.
    let ok = unsafe { sys::napi_is_typedarray(env.raw(), v.raw(), &mut yes) } == sys::Status::napi_ok;
    ok && yes
}

/// Whether ArrayBuffer `v` is detached (false when asking fails).
pub(crate) fn is_detached(env: &Env, v: Unknown<'_>) -> bool {
    let mut d = false;
    // SAFETY: writes the answer into `d`.
    let ok = unsafe { sys::napi_is_detached_arraybuffer(env.raw(), v.raw(), &mut d) } == sys::Status::napi_ok;
    ok && d
}

/// Detaches ArrayBuffer `v` with `napi_detach_arraybuffer` and returns its status. On Node 24
/// this aborts the process for a buffer that `markAsUntransferable` gave a detach key: see
/// `views::detach` for when it may be called.
pub(crate) fn detach_arraybuffer(env: &Env, v: Unknown<'_>) -> sys::napi_status {
    // SAFETY: detaching is memory-safe for V8 (views over the buffer become empty); the memory
    // stays the buffer's owner's to free.
    unsafe { sys::napi_detach_arraybuffer(env.raw(), v.raw()) }
}

/// ArrayBuffer `v`'s memory: where it starts and its length in bytes.
pub(crate) fn arraybuffer_info(env: &Env, v: Unknown<'_>) -> crate::error::Result<(*mut u8, usize)> {
    let mut data = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: writes the start and length into `data` and `len`; nothing is read through them.
    let status = unsafe { sys::napi_get_arraybuffer_info(env.raw(), v.raw(), &mut data, &mut len) };
    check(status, "reading an ArrayBuffer")?;
    Ok((data.cast(), len))
}

/// TypedArray `v`'s first element, the ArrayBuffer under it and its byte offset in that buffer.
pub(crate) fn typedarray_info<'e>(
    env: &'e Env,
    v: Unknown<'e>,
) -> crate::error::Result<(*mut u8, Unknown<'e>, usize)> {
    let mut ty = 0;
    let mut n = 0usize;
    let mut data = ptr::null_mut();
    let mut offset = 0usize;
    // SAFETY: writes the answers into the locals; the buffer is a value of the env.
    let buffer = unsafe {
        made(env, "reading a TypedArray", |raw, out| {
            sys::napi_get_typedarray_info(raw, v.raw(), &mut ty, &mut n, &mut data, out, &mut offset)
        })
    }?;
    Ok((data.cast(), buffer, offset))
}

/// A reference to a JavaScript value, kept across calls; deleted when dropped.
#[derive(Debug)]
pub(crate) struct Ref {
    env: sys::napi_env,
    raw: sys::napi_ref,
}

impl Ref {
    /// A strong reference: `v` lives at least as long as this.
    pub(crate) fn strong(env: &Env, v: Unknown<'_>, what: &str) -> crate::error::Result<Ref> {
        Self::new(env, v, 1, what)
    }

    /// A weak reference: `v` may be collected meanwhile (see [`value`](Self::value)).
    pub(crate) fn weak(env: &Env, v: Unknown<'_>, what: &str) -> crate::error::Result<Ref> {
        Self::new(env, v, 0, what)
    }

    fn new(env: &Env, v: Unknown<'_>, count: u32, what: &str) -> crate::error::Result<Ref> {
        let mut raw = ptr::null_mut();
        // SAFETY: writes the new reference into `raw`; `Drop` deletes it once.
        let status = unsafe { sys::napi_create_reference(env.raw(), v.raw(), count, &mut raw) };
        check(status, what)?;
        Ok(Ref { env: env.raw(), raw })
    }

    /// The value, unless it was collected (a weak reference's).
    pub(crate) fn value<'e>(&self, env: &'e Env) -> Option<Unknown<'e>> {
        debug_assert_eq!(env.raw(), self.env);
        let mut v = ptr::null_mut();
        // SAFETY: `self.raw` is a live reference of this env (deleted only by `Drop`); the call
        // writes its value, or null once it was collected.
        let ok =
            unsafe { sys::napi_get_reference_value(env.raw(), self.raw, &mut v) } == sys::Status::napi_ok;
        // SAFETY: a value Node-API just returned in this env.
        (ok && !v.is_null()).then(|| unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        // SAFETY: the reference was made in `self.env`, whose thread drops it (a `Ref` is
        // neither Send nor Sync), and is deleted here once.
        unsafe { sys::napi_delete_reference(self.env, self.raw) };
    }
}

/// A handle scope, for code that runs outside any call from JavaScript (a cleanup hook);
/// closed when dropped.
#[derive(Debug)]
pub(crate) struct HandleScope {
    env: sys::napi_env,
    raw: sys::napi_handle_scope,
}

impl HandleScope {
    /// Opens one in `env`; None when Node-API refused.
    pub(crate) fn open(env: &Env) -> Option<HandleScope> {
        let mut raw = ptr::null_mut();
        // SAFETY: writes the new scope into `raw`; `Drop` closes it once.
        let ok = unsafe { sys::napi_open_handle_scope(env.raw(), &mut raw) } == sys::Status::napi_ok;
        ok.then_some(HandleScope { env: env.raw(), raw })
    }
}

impl Drop for HandleScope {
    fn drop(&mut self) {
        // SAFETY: the scope opened in `open`, on this thread, closed once.
        unsafe { sys::napi_close_handle_scope(self.env, self.raw) };
    }
}

/// The bytes of `a`, a `Uint8Array` argument of the current call, to copy into.
pub(crate) fn bytes_mut(a: &mut Uint8Array) -> &mut [u8] {
    // SAFETY: `a` is memory V8 allocated, kept alive by the call's argument for as long as the
    // slice (it borrows `a`), and JavaScript cannot run while the call does, so nothing else
    // touches it meanwhile.
    unsafe { a.as_mut() }
}
