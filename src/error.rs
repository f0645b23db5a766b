//! Core errors as the JavaScript errors the facade recognises.

use mmapvec_core::{Code, Error};
use napi::Status;

/// Turns a core error into the JavaScript error the facade recognises: the message starts with
/// the stable code (`"ELOCKED: ..."`), which the facade moves into `err.code`.
pub(crate) fn js_error(e: Error) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("{}: {}", e.code.as_str(), e.message),
    )
}

/// The error of any call on a closed vec.
pub(crate) fn closed() -> napi::Error {
    js_error(Error::new(Code::Closed, "the vec is closed; open it again"))
}
