//! How the facade asks for a vec to be opened, and JavaScript numbers as whole Rust numbers.

use std::time::Duration;

use crate::error::Result;
use mmapvec_core::vec::{DEFAULT_RESERVATION, PACK_MIN_BYTES};
use mmapvec_core::{Code, Error, OpenOptions};
use napi_derive::napi;

use crate::layout::StorageMode;

use crate::error::js_error;

/// How the facade asks for a vec to be opened.
#[napi(object)]
pub struct OpenArgs {
    pub create: bool,
    pub create_new: bool,
    pub read_only: bool,
    pub temp: bool,
    pub capacity: f64,
    pub lock_timeout_ms: f64,
    pub version: Option<f64>,
    pub reservation: Option<f64>,
    /// The runtime's largest ArrayBuffer (`buffer.constants.MAX_LENGTH`).
    pub max_view_bytes: f64,
    /// Pack a large vec's columns so that one ArrayBuffer shows them all (mmap mode).
    pub pack: Option<bool>,
    /// From how many mapped bytes a vec is packed (tests lower it); default `PACK_MIN_BYTES`.
    pub pack_min_bytes: Option<f64>,
    /// Which buffers `layout()` shows; default mmap.
    pub mode: Option<StorageMode>,
    /// What lifts `max_view_bytes` here, for the message of a column past it.
    pub view_limit_fix: Option<String>,
}

impl OpenArgs {
    /// The core's options, after checking every number.
    pub(crate) fn options(&self) -> Result<OpenOptions> {
        Ok(OpenOptions {
            create: self.create,
            create_new: self.create_new,
            read_only: self.read_only,
            capacity: whole(self.capacity, "capacity")?,
            lock_timeout: Duration::from_millis(whole(self.lock_timeout_ms, "lockTimeoutMs")?),
            version: self.version.map(|v| whole(v, "version")).transpose()?,
            reservation: match self.reservation {
                Some(r) => whole(r, "reservation")? as usize,
                None => DEFAULT_RESERVATION,
            },
            max_view_bytes: whole(self.max_view_bytes, "maxViewBytes")?,
            view_limit_fix: self
                .view_limit_fix
                .clone()
                .unwrap_or_else(|| "split the data".to_string()),
            pack_min_bytes: match (self.pack, self.pack_min_bytes) {
                (Some(true), Some(n)) => Some(whole(n, "packMinBytes")? as usize),
                (Some(true), None) => Some(PACK_MIN_BYTES),
                _ => None,
            },
        })
    }
}

/// `n` as a whole number, or EINVAL naming `what`.
pub(crate) fn whole(n: f64, what: &str) -> Result<u64> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        Ok(n as u64)
    } else {
        Err(js_error(Error::new(
            Code::Invalid,
            format!("{what} must be a whole number from 0 to 2^53 - 1, got {n}"),
        )))
    }
}
