//! What `inspect` and `verify` report, in the shapes the facade reads.

use std::path::Path;

use crate::error::Result;
use mmapvec_core::inspect::{self, Info, Problem};
use napi_derive::napi;

use crate::error::js_error;

/// One column of [`inspect`]'s answer.
#[napi(object)]
pub struct ColumnInfoJs {
    pub name: String,
    #[napi(js_name = "type")]
    pub ty: String,
    pub count: u32,
    pub file: String,
    pub offset: u32,
    /// The column file's size; null when it is missing.
    pub bytes: Option<f64>,
    /// Rows the file has room for; null when it is missing.
    pub rows: Option<f64>,
}

/// What [`inspect`] found.
#[napi(object)]
pub struct InfoJs {
    pub path: String,
    pub format_version: u32,
    pub little_endian: bool,
    pub arch: String,
    pub app_version: f64,
    pub header_bytes: f64,
    pub length: f64,
    pub capacity: Option<f64>,
    /// A vec of plain values (one field, named `value`); the fields are `columns`.
    pub scalar: bool,
    pub columns: Vec<ColumnInfoJs>,
    /// `none`, `shared` or `exclusive`.
    pub lock: String,
    pub lock_held_here: bool,
    /// Whether readers (`readOnly` handles) have it open, beside a writer or not.
    pub readers: bool,
}

impl From<Info> for InfoJs {
    fn from(i: Info) -> InfoJs {
        InfoJs {
            path: i.path.display().to_string(),
            format_version: i.format_version,
            little_endian: i.little_endian,
            arch: i.arch,
            app_version: i.app_version as f64,
            header_bytes: i.header_bytes as f64,
            length: i.length as f64,
            capacity: i.capacity.map(|c| c as f64),
            scalar: i.schema.scalar,
            columns: i
                .columns
                .into_iter()
                .map(|c| ColumnInfoJs {
                    ty: c.type_name(),
                    name: c.name,
                    count: c.count,
                    file: c.file,
                    offset: c.offset,
                    bytes: c.bytes.map(|b| b as f64),
                    rows: c.rows.map(|r| r as f64),
                })
                .collect(),
            lock: i.lock.as_str().to_string(),
            lock_held_here: i.lock_held_here,
            readers: i.readers,
        }
    }
}

/// Reads the header, column file sizes and lock state of the vec at `path` without locking
/// or changing anything.
#[napi]
pub fn inspect(path: String) -> Result<InfoJs> {
    inspect::inspect(Path::new(&path))
        .map(InfoJs::from)
        .map_err(js_error)
}

/// A problem [`verify`] found.
#[napi(object)]
pub struct ProblemJs {
    pub code: String,
    pub check: String,
    pub message: String,
}

impl From<Problem> for ProblemJs {
    fn from(p: Problem) -> ProblemJs {
        ProblemJs {
            code: p.code.as_str().to_string(),
            check: p.check.to_string(),
            message: p.message,
        }
    }
}

/// Every problem the checks of the format find in the vec at `path` (ENOENT when nothing is
/// there). Reads only.
#[napi]
pub fn verify(path: String) -> Result<Vec<ProblemJs>> {
    inspect::verify(Path::new(&path))
        .map(|ps| ps.into_iter().map(ProblemJs::from).collect())
        .map_err(js_error)
}
