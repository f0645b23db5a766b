//! `NativeVec`, the one wrapper of a vec on the Node side: the open [`MmapVec`] and every view
//! it handed to JavaScript (external ArrayBuffers, overlay memories), driven by the facade.
//!
//! This file holds the class JavaScript sees; `revoke.rs` keeps the views in step with the
//! vec's memory (growth, shrink, schema changes, close, collection), and `teardown.rs` writes a
//! buffered vec back when its environment is torn down.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mmapvec_core::header::HEADER_FILE;
use mmapvec_core::sys;
use mmapvec_core::{Code, ElemType, Error, MmapVec, OpenOptions};
use napi::bindgen_prelude::{ObjectFinalize, TypedArray, Uint8Array, Unknown};
use napi::Env;

use crate::error::Result;
use napi_derive::napi;

use crate::args::{whole, OpenArgs};
use crate::error::{closed, js_error};
use crate::flush::FlushJob;
use crate::layout::{Layout, SchemaRequest, StorageMode};
use crate::napi_calls;
use crate::overlay::{Marks, Overlay};
use crate::views::Views;

mod live;
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
    /// Which buffers [`layout`](Self::layout) shows.
    mode: StorageMode,
    /// How it was opened: a reader opens the vec again after the writer changed its schema.
    opts: OpenOptions,
    /// Set at close: ends the waits of `changed` still running.
    cancel: Arc<AtomicBool>,
    /// The writer's live file, for JavaScript's `Atomics` (mmap mode; overlay mode's memory).
    live_views: Views,
    live_overlay: Option<Overlay>,
}

#[napi]
impl NativeVec {
    /// Without `schema`, opens an existing vec with its stored schema (never creates). Read
    /// its [`layout`](Self::layout) next.
    #[napi(factory)]
    pub fn open(path: String, schema: Option<SchemaRequest>, args: OpenArgs) -> Result<Self> {
        let schema = schema.map(|s| s.schema()).transpose()?;
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
            mode: args.mode.unwrap_or(StorageMode::Mapped),
            opts,
            cancel: Arc::new(AtomicBool::new(false)),
            live_views: Views::default(),
            live_overlay: None,
        })
    }

    /// Everything the facade needs of the vec as it is now: schema, length, capacity, and the
    /// buffers its storage mode shows.
    #[napi]
    pub fn layout<'e>(&mut self, env: &'e Env) -> Result<Layout<'e>> {
        let live = self.live_buffer(env)?;
        let (header, buffers, offsets) = match self.mode {
            StorageMode::Buffered => (None, Vec::new(), Vec::new()),
            StorageMode::Mapped => (
                Some(self.header_buffer(env)?),
                self.column_buffers(env)?,
                self.column_offsets()?,
            ),
            StorageMode::Overlay => {
                // A fault under the current memories marks the vec damaged; new memories must
                // not replace them (and forget that) before the damage is reported.
                self.vec_mut()?;
                let header = self.overlay_header(env)?;
                let buffers = self.overlay_columns(env)?;
                let offsets = self
                    .vec()?
                    .schema()
                    .columns
                    .iter()
                    .map(|c| f64::from(c.offset))
                    .collect();
                (Some(header), buffers, offsets)
            }
        };
        Ok(Layout::of(self.vec()?, header, buffers, offsets, live))
    }

    /// The writer's live file as JavaScript publishes through it with `Atomics`: an external
    /// buffer (mmap mode) or a WebAssembly memory with the file over it (overlay mode). None in
    /// buffered mode (it publishes through `beginUnit`/`endUnit`), for readers (they follow it
    /// natively), and for a vec without a live file.
    fn live_buffer<'e>(&mut self, env: &'e Env) -> Result<Option<Unknown<'e>>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let Some(live) = v.live().filter(|_| !v.is_read_only()) else {
            return Ok(None);
        };
        match self.mode {
            StorageMode::Buffered => Ok(None),
            StorageMode::Mapped => self.live_views.header(env, live.map().clone()).map(Some),
            StorageMode::Overlay => {
                let overlay = match &mut self.live_overlay {
                    Some(o) => o,
                    none => none.insert(Overlay::attach(
                        env,
                        live.file(),
                        mmapvec_core::live::LIVE_SIZE,
                        v.map_mode(),
                    )?),
                };
                overlay.buffer(env).map(Some)
            }
        }
    }

    fn header_buffer<'e>(&mut self, env: &'e Env) -> Result<Unknown<'e>> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        self.header_views.header(env, v.header_region().0)
    }

    /// One ArrayBuffer per stored column, covering `capacity` rows from the byte offset
    /// `columnOffsets` gives; the columns of a packed vec share one.
    fn column_buffers<'e>(&mut self, env: &'e Env) -> Result<Vec<Unknown<'e>>> {
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
    fn column_offsets(&self) -> Result<Vec<f64>> {
        let v = self.vec()?;
        Ok((0..self.column_views.len())
            .map(|i| v.column_pack(i).map_or(0.0, |(_, at)| at as f64))
            .collect())
    }

    /// Overlay mode: the header's WebAssembly memory, with the header file mapped over it.
    fn overlay_header<'e>(&mut self, env: &'e Env) -> Result<Unknown<'e>> {
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
    fn overlay_columns<'e>(&mut self, env: &'e Env) -> Result<Vec<Unknown<'e>>> {
        self.replace_overlays(env)?;
        self.column_overlays
            .iter()
            .flatten()
            .map(|o| o.buffer(env))
            .collect()
    }

    /// Grows to at least `min_capacity` rows (geometrically, or exactly); returns the new layout.
    #[napi]
    pub fn grow<'e>(&mut self, env: &'e Env, min_capacity: f64, geometric: bool) -> Result<Layout<'e>> {
        let min = whole(min_capacity, "capacity")?;
        let growth = self.vec_mut()?.grow(min, geometric).map_err(js_error)?;
        self.after_growth(env, growth);
        self.layout(env)
    }

    /// Gives back the files' space past the last row.
    #[napi]
    pub fn shrink_to_fit<'e>(&mut self, env: &'e Env) -> Result<Layout<'e>> {
        self.shrink(env)?;
        self.layout(env).inspect_err(|_| {
            if self.mode == StorageMode::Overlay {
                // The old memories are gone (they mapped pages the files no longer have) and
                // no new ones could be made: the rows are safe in the files, and the vec closes
                // rather than keep views whose writes would go nowhere.
                self.detach_and_close(env);
            }
        })
    }

    /// False once closed (by `close`, or by a shrink that could not make new memories).
    #[napi]
    pub fn is_open(&self) -> bool {
        self.inner.is_some()
    }

    /// Adds a column of `count` values of `ty` per row (existing rows read zero in it).
    #[napi]
    pub fn add_column<'e>(
        &mut self,
        env: &'e Env,
        name: String,
        ty: String,
        count: u32,
    ) -> Result<Layout<'e>> {
        let ty = ElemType::parse(&ty).ok_or_else(|| {
            js_error(Error::new(
                Code::Invalid,
                format!("addColumn: unknown type '{ty}'"),
            ))
        })?;
        self.change_schema(env, |v| v.add_column(&name, ty, count))?;
        self.layout(env)
    }

    /// Removes a column and its data; its views become empty.
    #[napi]
    pub fn drop_column<'e>(&mut self, env: &'e Env, name: String) -> Result<Layout<'e>> {
        self.change_schema(env, |v| v.drop_column(&name))?;
        self.layout(env)
    }

    #[napi]
    pub fn rename_column<'e>(&mut self, env: &'e Env, from: String, to: String) -> Result<Layout<'e>> {
        self.change_schema(env, |v| v.rename_column(&from, &to))?;
        self.layout(env)
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
    /// the new pages are not faulted in. Returns the new layout.
    #[napi]
    pub fn grow_for_writes<'e>(&mut self, env: &'e Env, min_capacity: f64) -> Result<Layout<'e>> {
        let min = whole(min_capacity, "capacity")?;
        let growth = self.vec_mut()?.grow_for_writes(min).map_err(js_error)?;
        self.after_growth(env, growth);
        self.layout(env)
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
    fn finalize(mut self, env: Env) -> napi::Result<()> {
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
