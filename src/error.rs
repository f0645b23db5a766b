//! Core errors as JavaScript errors whose `code` is the core's stable code, and the limits the
//! facade checks before it calls in: both are defined here once, and the facade's types and
//! checks come from the generated binding (`ErrorCode`, `MAX_COLUMNS`...).

use mmapvec_core::{schema, Code, Error};
use napi_derive::napi;

/// The stable code of every error the binding throws (the JavaScript error's `code`).
#[napi(string_enum)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Another handle holds the vec's lock.
    #[napi(value = "ELOCKED")]
    Locked,
    #[napi(value = "EEXIST")]
    Exists,
    #[napi(value = "ENOENT")]
    NotFound,
    #[napi(value = "EFORMAT")]
    Format,
    #[napi(value = "ESCHEMA")]
    Schema,
    #[napi(value = "EVERSION")]
    Version,
    #[napi(value = "EARCH")]
    Arch,
    #[napi(value = "ECLOSED")]
    Closed,
    #[napi(value = "EREADONLY")]
    ReadOnly,
    #[napi(value = "ERANGE")]
    Range,
    #[napi(value = "ENOSPC")]
    NoSpace,
    #[napi(value = "EINVAL")]
    Invalid,
    #[napi(value = "EACCES")]
    Access,
    #[napi(value = "EIO")]
    Io,
}

impl From<Code> for ErrorCode {
    fn from(c: Code) -> ErrorCode {
        match c {
            Code::Locked => ErrorCode::Locked,
            Code::Exists => ErrorCode::Exists,
            Code::NotFound => ErrorCode::NotFound,
            Code::Format => ErrorCode::Format,
            Code::Schema => ErrorCode::Schema,
            Code::Version => ErrorCode::Version,
            Code::Arch => ErrorCode::Arch,
            Code::Closed => ErrorCode::Closed,
            Code::ReadOnly => ErrorCode::ReadOnly,
            Code::Range => ErrorCode::Range,
            Code::NoSpace => ErrorCode::NoSpace,
            Code::Invalid => ErrorCode::Invalid,
            Code::Access => ErrorCode::Access,
            Code::Io => ErrorCode::Io,
        }
    }
}

impl ErrorCode {
    fn core(self) -> Code {
        match self {
            ErrorCode::Locked => Code::Locked,
            ErrorCode::Exists => Code::Exists,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::Format => Code::Format,
            ErrorCode::Schema => Code::Schema,
            ErrorCode::Version => Code::Version,
            ErrorCode::Arch => Code::Arch,
            ErrorCode::Closed => Code::Closed,
            ErrorCode::ReadOnly => Code::ReadOnly,
            ErrorCode::Range => Code::Range,
            ErrorCode::NoSpace => Code::NoSpace,
            ErrorCode::Invalid => Code::Invalid,
            ErrorCode::Access => Code::Access,
            ErrorCode::Io => Code::Io,
        }
    }
}

/// napi-rs makes the JavaScript error's `code` from this.
impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.core().as_str()
    }
}

/// An error the binding throws: its `code` is set, its message is the core's.
pub type JsError = napi::Error<ErrorCode>;
pub type Result<T> = std::result::Result<T, JsError>;

/// The JavaScript error of a core error.
pub(crate) fn js_error(e: Error) -> JsError {
    napi::Error::new(e.code.into(), e.message)
}

/// The error of any call on a closed vec.
pub(crate) fn closed() -> JsError {
    js_error(Error::new(Code::Closed, "the vec is closed; open it again"))
}

/// The most fields a vec holds.
#[napi]
pub const MAX_COLUMNS: u32 = schema::MAX_COLUMNS as u32;
/// The longest field name, in UTF-8 bytes.
#[napi]
pub const MAX_NAME_BYTES: u32 = schema::MAX_NAME as u32;
/// The most values in one array field.
#[napi]
pub const MAX_COUNT: u32 = schema::MAX_COUNT;
