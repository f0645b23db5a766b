//! `NativeVec`, the one wrapper of a vec on the Node side: the open [`MmapVec`] and every view
//! it handed to JavaScript (external ArrayBuffers, overlay memories), driven by the facade.
//!
//! This file holds the class JavaScript sees; `revoke.rs` keeps the views in step with the
//! vec's memory (growth, shrink, schema changes, close, collection), and `teardown.rs` writes a
//! buffered vec back when its environment is torn down.

use std::path::Path;

use mmapvec_core::header::HEADER_FILE;
use mmapvec_core::sys;
use mmapvec_core::{Code, ElemType, Error, MmapVec, Schema};
use napi::bindgen_prelude::{ObjectFinalize, TypedArray, Uint8Array, Unknown};
use napi::{Env, Result};
use napi_derive::napi;

use crate::args::{whole, OpenArgs};
use crate::error::{closed, js_error};
use crate::flush::FlushJob;
use crate::napi_calls;
use crate::overlay::{Marks, Overlay};
use crate::views::Views;

mod revoke;
#[allow(unsafe_code)]
mod teardown;

/// One open vec, as the facade drives it.
#[napi(custom_finalize)]
#[derive(Debug)]
pub struct NativeVec {
    /// None once closed.
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
    /// Its cleanup hook points at this `NativeVec`, and is removed whenever this is dropped:
    /// by `close`, by `release` (the finalizer's), and when the `NativeVec` itself is dropped
    /// (see `teardown.rs` for why it cannot move meanwhile).
    write_back: Option<teardown::WriteBack>,
    /// Overlay mode: `worker_threads.isMarkedAsUntransferable`, where the runtime has it.
    marks: Marks,
}

#[napi]
impl NativeVec {
    /// Without `schema_json`, opens an existing vec with its stored schema (never creates).
    #[napi(factory)]
    pub fn open(path: String, schema_json: Option<String>, args: OpenArgs) -> Result<Self> {
        let schema = schema_json
            .map(|j| Schema::parse_request(&j))
            .transpose()
            .map_err(js_error)?;
        let opts = args.options()?;
        let path = Path::new(&path);
        let v = match (schema.as_ref(), args.temp) {
            (Some(schema), true) => MmapVec::temp(schema, &opts),
            (Some(schema), false) => MmapVec::open(path, schema, &opts),
            (None, false) => MmapVec::open_stored(path, &opts),
            (None, true) => Err(Error::new(Code::Invalid, "a temp vec needs a schema")),
        }
        .map_err(js_error)?;
        let n = v.schema().columns.len();
        Ok(NativeVec {
            inner: Some(v),
            header_views: Views::default(),
            column_views: (0..n).map(|_| Views::default()).collect(),
            pack_views: Views::default(),
            header_overlay: None,
            column_overlays: (0..n).map(|_| None).collect(),
            write_back: None,
            marks: Marks::default(),
        })
    }

    /// The stored schema (fields in stored order, with their files), as JSON.
    #[napi(getter)]
    pub fn schema_json(&self) -> Result<String> {
        Ok(self.vec()?.schema().to_json())
    }

    #[napi(getter)]
    pub fn path(&self) -> Result<String> {
        Ok(self.vec()?.path().display().to_string())
    }

    /// The stored row count (buffered mode reads it once at open).
    #[napi(getter)]
    pub fn length(&self) -> Result<f64> {
        Ok(self.vec()?.len() as f64)
    }

    #[napi(getter)]
    pub fn capacity(&self) -> Result<f64> {
        Ok(self.vec()?.capacity() as f64)
    }

    #[napi(getter)]
    pub fn app_version(&self) -> Result<f64> {
        Ok(self.vec()?.app_version() as f64)
    }

    /// Byte offset of the row count (an f64) in the header buffer.
    #[napi(getter)]
    pub fn length_offset(&self) -> Result<u32> {
        Ok(self.vec()?.header_region().1 as u32)
    }

    #[napi(ts_return_type = "ArrayBuffer")]
    pub fn header_buffer<'e>(&mut self, env: &'e Env) -> Result<Unknown<'e>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        self.header_views.header(env, v.header_region().0)
    }

    /// One ArrayBuffer per stored column, covering `capacity` rows from the byte offset
    /// `columnOffsets` gives; the columns of a packed vec share one.
    #[napi(ts_return_type = "ArrayBuffer[]")]
    pub fn column_buffers<'e>(&mut self, env: &'e Env) -> Result<Vec<Unknown<'e>>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let mut out = Vec::with_capacity(self.column_views.len());
        // The pack's buffer is made once, and again only once JavaScript detached it.
        let mut pack_buffer = None;
        for (i, views) in self.column_views.iter_mut().enumerate() {
            let buffer = if let Some((pack, _)) = v.column_pack(i) {
                let b = match pack_buffer.or_else(|| self.pack_views.live(env)) {
                    Some(b) => b,
                    None => self.pack_views.pack(env, pack)?,
                };
                pack_buffer = Some(b);
                b
            } else {
                views.column(env, v, i)?
            };
            out.push(buffer);
        }
        Ok(out)
    }

    /// Where each stored column's rows start in its buffer from `columnBuffers`, in bytes.
    #[napi(getter)]
    pub fn column_offsets(&self) -> Result<Vec<f64>> {
        let v = self.vec()?;
        Ok((0..self.column_views.len())
            .map(|i| v.column_pack(i).map_or(0.0, |(_, at)| at as f64))
            .collect())
    }

    /// Overlay mode: the header's WebAssembly memory, with the header file mapped over it.
    #[napi(ts_return_type = "ArrayBuffer")]
    pub fn overlay_header<'e>(&mut self, env: &'e Env) -> Result<Unknown<'e>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let overlay = match &mut self.header_overlay {
            Some(o) => o,
            none => {
                let (file, size) = v.header_file();
                // The last page may pass the file's end; only bytes past the end of that page
                // would fault, and the header's bytes end before it.
                let len = sys::round_up(size, sys::page_size()).unwrap_or(size);
                none.insert(Overlay::attach(env, file, len, v.map_mode())?)
            }
        };
        overlay.buffer(env)
    }

    /// Overlay mode: one WebAssembly memory's buffer per stored column, the column file mapped
    /// over it from the file's start (rows start at the column's offset), covering `capacity`
    /// rows. Views of a column whose memory is replaced are detached.
    #[napi(ts_return_type = "ArrayBuffer[]")]
    pub fn overlay_columns<'e>(&mut self, env: &'e Env) -> Result<Vec<Unknown<'e>>> {
        self.replace_overlays(env)?;
        self.column_overlays
            .iter()
            .flatten()
            .map(|o| o.buffer(env))
            .collect()
    }

    /// Grows to at least `min_capacity` rows (geometrically, or exactly); returns the capacity.
    #[napi]
    pub fn grow(&mut self, env: &Env, min_capacity: f64, geometric: bool) -> Result<f64> {
        let min = whole(min_capacity, "capacity")?;
        let growth = self.vec_mut()?.grow(min, geometric).map_err(js_error)?;
        Ok(self.after_growth(env, growth) as f64)
    }

    #[napi]
    pub fn shrink_to_fit(&mut self, env: &Env) -> Result<f64> {
        Ok(self.shrink(env)? as f64)
    }

    /// Adds a column of `count` values of `ty` per row (existing rows read zero in it).
    #[napi]
    pub fn add_column(&mut self, env: &Env, name: String, ty: String, count: u32) -> Result<()> {
        let ty = ElemType::parse(&ty).ok_or_else(|| {
            js_error(Error::new(
                Code::Invalid,
                format!("addColumn: unknown type '{ty}'"),
            ))
        })?;
        self.change_schema(env, |v| v.add_column(&name, ty, count))
    }

    /// Removes a column and its data; its views become empty.
    #[napi]
    pub fn drop_column(&mut self, env: &Env, name: String) -> Result<()> {
        self.change_schema(env, |v| v.drop_column(&name))
    }

    #[napi]
    pub fn rename_column(&mut self, env: &Env, from: String, to: String) -> Result<()> {
        self.change_schema(env, |v| v.rename_column(&from, &to))
    }

    #[napi]
    pub fn prefetch(&mut self, start: f64, end: f64) -> Result<()> {
        let (start, end) = (whole(start, "start")?, whole(end, "end")?);
        self.vec_mut()?.prefetch(start, end).map_err(js_error)
    }

    #[napi]
    pub fn flush_sync(&mut self) -> Result<()> {
        self.vec_mut()?.flush().map_err(js_error)
    }

    /// What a flush must sync, as a job that owns the mappings it touches. Run it with
    /// `run()`: the vec itself stays free for other calls (growth, close) while it runs, which
    /// an async method of this class would not allow (napi-rs keeps `self` borrowed until an
    /// async task settles).
    #[napi]
    pub fn flush_job(&mut self) -> Result<FlushJob> {
        Ok(FlushJob::new(self.vec_mut()?.sync_job()))
    }

    /// Buffered mode: copies stored column `i` (capacity rows) into `dst`.
    #[napi]
    pub fn read_column(&self, i: u32, mut dst: Uint8Array) -> Result<()> {
        let v = self.vec()?;
        v.read_column(i as usize, napi_calls::bytes_mut(&mut dst))
            .map_err(js_error)
    }

    /// Buffered mode: copies `src` into stored column `i`, from its first row.
    #[napi]
    pub fn write_column(&mut self, i: u32, src: Uint8Array) -> Result<()> {
        self.vec_mut()?.write_column(i as usize, &src).map_err(js_error)
    }

    /// Grows geometrically to at least `min_capacity` rows for rows `writeRows` will write:
    /// the new pages are not faulted in. Returns the capacity.
    #[napi]
    pub fn grow_for_writes(&mut self, env: &Env, min_capacity: f64) -> Result<f64> {
        let min = whole(min_capacity, "capacity")?;
        let growth = self.vec_mut()?.grow_for_writes(min).map_err(js_error)?;
        Ok(self.after_growth(env, growth) as f64)
    }

    /// Writes `src`'s bytes (whole rows) into stored column `i` from row `first_row` on,
    /// through the file: the bulk path of `pushMany`. The length is left alone.
    #[napi]
    pub fn write_rows(&mut self, i: u32, first_row: f64, src: TypedArray) -> Result<()> {
        let row = whole(first_row, "row")?;
        self.vec_mut()?
            .write_rows(i as usize, row, &src.arraybuffer)
            .map_err(js_error)
    }

    /// Overlay mode: `worker_threads.isMarkedAsUntransferable`, asked before an overlay
    /// memory's views are detached (growing a memory whose buffer Node 24 marked aborts).
    #[napi]
    pub fn ask_marks(
        &mut self,
        env: &Env,
        #[napi(ts_arg_type = "(value: object) => boolean")] is_marked: Unknown,
    ) -> Result<()> {
        self.marks.keep(env, is_marked)
    }

    /// Buffered mode: the buffers a teardown of this thread's environment writes back while the
    /// vec is open (a worker terminated from outside runs no JavaScript): `length` holds the row
    /// count at index 0, `columns[k]` is stored column `stored[k]`. Replaces the last call's.
    #[napi]
    pub fn keep_for_teardown(
        &mut self,
        env: &Env,
        #[napi(ts_arg_type = "Float64Array")] length: Unknown,
        #[napi(ts_arg_type = "ArrayBufferView[]")] columns: Vec<Unknown>,
        stored: Vec<u32>,
    ) -> Result<()> {
        if columns.len() != stored.len() {
            return Err(js_error(Error::new(Code::Invalid, "one stored index per column")));
        }
        let pairs: Vec<_> = stored.iter().map(|&i| i as usize).zip(columns).collect();
        self.keep_buffers(env, length, &pairs)
    }

    /// Buffered mode: stores the row count in the header.
    #[napi]
    pub fn set_length(&mut self, n: f64) -> Result<()> {
        let n = whole(n, "length")?;
        self.vec_mut()?.set_len(n).map_err(js_error)
    }

    /// Detaches every view, closes the files and releases the lock.
    #[napi]
    pub fn close(&mut self, env: &Env) {
        self.detach_and_close(env);
    }

    /// Closes the vec, and removes it again when this open created it: the facade's open failed
    /// after the native one (memory for buffered columns, say), and must leave nothing behind.
    #[napi]
    pub fn discard(&mut self, env: &Env) {
        self.detach_and_discard(env);
    }
}

impl ObjectFinalize for NativeVec {
    fn finalize(mut self, env: Env) -> Result<()> {
        self.release(&env);
        Ok(())
    }
}

impl NativeVec {
    /// The vec, unless it is closed.
    fn vec(&self) -> Result<&MmapVec> {
        self.inner.as_ref().ok_or_else(closed)
    }

    /// The vec, for a call that changes or syncs it: refused once a page of a file faulted
    /// under the core's mappings or under an overlay (see [`MmapVec::intact`]).
    fn vec_mut(&mut self) -> Result<&mut MmapVec> {
        let v = self.inner.as_mut().ok_or_else(closed)?;
        v.intact().map_err(js_error)?;
        let faulted = |o: &Option<Overlay>| o.as_ref().is_some_and(Overlay::faulted);
        let file = if faulted(&self.header_overlay) {
            Some(HEADER_FILE.to_string())
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
}
