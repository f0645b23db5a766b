//! What crosses the boundary as one value: a schema as data (both ways), and a vec's layout,
//! which open, growth, shrink and every schema change return so that the facade reads it once.

use mmapvec_core::{Code, ElemType, Error, MmapVec, Schema};
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;

use crate::error::{js_error, Result};

/// Where a vec's rows live on the JavaScript side, chosen once at open.
#[napi(string_enum)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    /// Views are external ArrayBuffers over the mapped files.
    #[napi(value = "mmap")]
    Mapped,
    /// Columns are buffers V8 allocated, copied to and from the files.
    #[napi(value = "buffered")]
    Buffered,
    /// Views are WebAssembly memories with the files mapped over them.
    #[napi(value = "overlay")]
    Overlay,
}

/// One field of a schema as a program asks for it.
#[napi(object)]
pub struct FieldRequest {
    pub name: String,
    #[napi(js_name = "type")]
    pub ty: String,
    pub count: u32,
}

/// A schema as a program asks for it: its fields in order, or one plain value (`scalar`).
#[napi(object)]
pub struct SchemaRequest {
    pub scalar: bool,
    pub fields: Vec<FieldRequest>,
}

impl SchemaRequest {
    /// The core's schema, validated (EINVAL says what is wrong).
    pub(crate) fn schema(&self) -> Result<Schema> {
        let fields = self
            .fields
            .iter()
            .map(|f| match ElemType::parse(&f.ty) {
                Some(ty) => Ok((f.name.clone(), ty, f.count)),
                None => Err(js_error(Error::new(
                    Code::Invalid,
                    format!(
                        "invalid schema: field '{}' has the unknown type '{}'",
                        f.name, f.ty
                    ),
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        Schema::request(self.scalar, fields).map_err(js_error)
    }
}

/// A stored column: its field, file and where its rows start in that file.
#[napi(object, object_from_js = false)]
pub struct StoredColumn {
    pub name: String,
    #[napi(js_name = "type")]
    pub ty: String,
    pub count: u32,
    pub file: String,
    pub offset: u32,
}

/// A vec as the facade needs it after open, growth, shrink or a schema change.
#[napi(object, object_from_js = false)]
pub struct Layout<'e> {
    /// The vec's directory, as the core resolved it.
    pub path: String,
    pub scalar: bool,
    /// The columns in stored order.
    pub columns: Vec<StoredColumn>,
    pub length: f64,
    pub capacity: f64,
    /// The program's data version stored in the header.
    pub version: f64,
    /// Where the row count (an f64) is in `header`.
    pub length_offset: u32,
    /// The header's memory (mmap and overlay modes); its row count is the vec's length.
    #[napi(ts_type = "ArrayBuffer | undefined")]
    pub header: Option<Unknown<'e>>,
    /// One buffer per stored column, covering `capacity` rows from `offsets[i]` bytes (the
    /// columns of a packed vec share one); empty in buffered mode, which makes its own.
    #[napi(ts_type = "ArrayBuffer[]")]
    pub buffers: Vec<Unknown<'e>>,
    pub offsets: Vec<f64>,
    /// The writer's live file (mmap and overlay modes), where JavaScript publishes the row
    /// count for readers; absent for readers, in buffered mode, and without a live file.
    #[napi(ts_type = "ArrayBuffer | undefined")]
    pub live: Option<Unknown<'e>>,
    /// Where the sequence counter (a u32) is in `live`.
    pub live_seq_offset: u32,
    /// Where the waiting readers' count (a u32) is in `live`.
    pub live_waiters_offset: u32,
    /// Where the published row count (an f64) is in `live`.
    pub live_length_offset: u32,
}

impl<'e> Layout<'e> {
    /// The layout of `v`, with the buffers its storage mode shows.
    pub(crate) fn of(
        v: &MmapVec,
        header: Option<Unknown<'e>>,
        buffers: Vec<Unknown<'e>>,
        offsets: Vec<f64>,
        live: Option<Unknown<'e>>,
    ) -> Layout<'e> {
        Layout {
            path: v.path().display().to_string(),
            scalar: v.schema().scalar,
            columns: v
                .schema()
                .columns
                .iter()
                .map(|c| StoredColumn {
                    name: c.name.clone(),
                    ty: c.ty.name(),
                    count: c.count,
                    file: c.file.clone(),
                    offset: c.offset,
                })
                .collect(),
            length: v.len() as f64,
            capacity: v.capacity() as f64,
            version: v.app_version() as f64,
            length_offset: v.header_region().1 as u32,
            header,
            buffers,
            offsets,
            live,
            live_seq_offset: mmapvec_core::live::OFF_SEQ as u32,
            live_waiters_offset: mmapvec_core::live::OFF_WAITERS as u32,
            live_length_offset: mmapvec_core::live::OFF_LENGTH as u32,
        }
    }
}
