//! The Node-API binding: `#[napi]` wrappers over `mmapvec-core`, the mapping of its errors, and
//! the module that hands the core's mapped memory to V8 and takes it back (`node.rs`). Nothing
//! here maps files or takes locks; the TypeScript facade in `ts/` is the public API.

// The napi macros allow their own generated unsafe; any written here is an error, except in
// the module that hands mapped memory to V8.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[allow(unsafe_code)]
mod node;

use std::path::Path;
use std::time::Duration;

use mmapvec_core::inspect::{self, Info, Problem};
use mmapvec_core::{Code, ElemType, Error, OpenOptions, Schema, SyncJob};
use napi::bindgen_prelude::{AsyncTask, ObjectFinalize, TypedArray, Uint8Array, Unknown};
use napi::{Env, Result, Task};
use napi_derive::napi;
use node::{js_error, NodeVec};

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
}

fn whole(n: f64, what: &str) -> Result<u64> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        Ok(n as u64)
    } else {
        Err(js_error(Error::new(
            Code::Invalid,
            format!("{what} must be a whole number from 0 to 2^53 - 1, got {n}"),
        )))
    }
}

/// One open vec, as the facade drives it.
#[napi(custom_finalize)]
pub struct NativeVec {
    inner: NodeVec,
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
        let opts = OpenOptions {
            create: args.create,
            create_new: args.create_new,
            read_only: args.read_only,
            capacity: whole(args.capacity, "capacity")?,
            lock_timeout: Duration::from_millis(whole(args.lock_timeout_ms, "lockTimeoutMs")?),
            version: args.version.map(|v| whole(v, "version")).transpose()?,
            reservation: match args.reservation {
                Some(r) => whole(r, "reservation")? as usize,
                None => mmapvec_core::vec::DEFAULT_RESERVATION,
            },
            max_view_bytes: whole(args.max_view_bytes, "maxViewBytes")?,
            pack_min_bytes: match (args.pack, args.pack_min_bytes) {
                (Some(true), Some(n)) => Some(whole(n, "packMinBytes")? as usize),
                (Some(true), None) => Some(mmapvec_core::vec::PACK_MIN_BYTES),
                _ => None,
            },
        };
        let inner = NodeVec::open(Path::new(&path), schema.as_ref(), &opts, args.temp)?;
        Ok(NativeVec { inner })
    }

    /// The stored schema (fields in stored order, with their files), as JSON.
    #[napi(getter)]
    pub fn schema_json(&self) -> Result<String> {
        Ok(self.inner.vec()?.schema().to_json())
    }

    #[napi(getter)]
    pub fn path(&self) -> Result<String> {
        Ok(self.inner.vec()?.path().display().to_string())
    }

    /// The stored row count (buffered mode reads it once at open).
    #[napi(getter)]
    pub fn length(&self) -> Result<f64> {
        Ok(self.inner.vec()?.len() as f64)
    }

    #[napi(getter)]
    pub fn capacity(&self) -> Result<f64> {
        Ok(self.inner.vec()?.capacity() as f64)
    }

    #[napi(getter)]
    pub fn app_version(&self) -> Result<f64> {
        Ok(self.inner.vec()?.app_version() as f64)
    }

    /// Byte offset of the row count (an f64) in the header buffer.
    #[napi(getter)]
    pub fn length_offset(&self) -> Result<u32> {
        Ok(self.inner.header_length_offset()? as u32)
    }

    #[napi(ts_return_type = "ArrayBuffer")]
    pub fn header_buffer<'e>(&mut self, env: &'e Env) -> Result<Unknown<'e>> {
        self.inner.header_buffer(env)
    }

    /// One ArrayBuffer per stored column, covering `capacity` rows from the byte offset
    /// `columnOffsets` gives; the columns of a packed vec share one.
    #[napi(ts_return_type = "ArrayBuffer[]")]
    pub fn column_buffers<'e>(&mut self, env: &'e Env) -> Result<Vec<Unknown<'e>>> {
        self.inner.column_buffers(env)
    }

    /// Where each stored column's rows start in its buffer from `columnBuffers`, in bytes.
    #[napi(getter)]
    pub fn column_offsets(&self) -> Result<Vec<f64>> {
        self.inner.column_offsets()
    }

    /// Overlay mode: the header's WebAssembly memory, with the header file mapped over it.
    #[napi(ts_return_type = "ArrayBuffer")]
    pub fn overlay_header<'e>(&mut self, env: &'e Env) -> Result<Unknown<'e>> {
        self.inner.overlay_header(env)
    }

    /// Overlay mode: one WebAssembly memory's buffer per stored column, the column file mapped
    /// over it from the file's start (rows start at the column's offset), covering `capacity`
    /// rows. Views of a column whose memory is replaced are detached.
    #[napi(ts_return_type = "ArrayBuffer[]")]
    pub fn overlay_columns<'e>(&mut self, env: &'e Env) -> Result<Vec<Unknown<'e>>> {
        self.inner.overlay_columns(env)
    }

    /// Grows to at least `min_capacity` rows (geometrically, or exactly); returns the capacity.
    #[napi]
    pub fn grow(&mut self, env: &Env, min_capacity: f64, geometric: bool) -> Result<f64> {
        let min = whole(min_capacity, "capacity")?;
        Ok(self.inner.grow(env, min, geometric)? as f64)
    }

    #[napi]
    pub fn shrink_to_fit(&mut self, env: &Env) -> Result<f64> {
        Ok(self.inner.shrink_to_fit(env)? as f64)
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
        self.inner.change_schema(env, |v| v.add_column(&name, ty, count))
    }

    /// Removes a column and its data; its views become empty.
    #[napi]
    pub fn drop_column(&mut self, env: &Env, name: String) -> Result<()> {
        self.inner.change_schema(env, |v| v.drop_column(&name))
    }

    #[napi]
    pub fn rename_column(&mut self, env: &Env, from: String, to: String) -> Result<()> {
        self.inner.change_schema(env, |v| v.rename_column(&from, &to))
    }

    #[napi]
    pub fn prefetch(&mut self, start: f64, end: f64) -> Result<()> {
        self.inner.prefetch(whole(start, "start")?, whole(end, "end")?)
    }

    #[napi]
    pub fn flush_sync(&mut self) -> Result<()> {
        self.inner.flush()
    }

    /// What a flush must sync, as a job that owns the mappings it touches. Run it with
    /// `run()`: the vec itself stays free for other calls (growth, close) while it runs, which
    /// an async method of this class would not allow (napi-rs keeps `self` borrowed until an
    /// async task settles).
    #[napi]
    pub fn flush_job(&mut self) -> Result<FlushJob> {
        Ok(FlushJob(Some(self.inner.sync_job()?)))
    }

    /// Buffered mode: copies stored column `i` (capacity rows) into `dst`.
    #[napi]
    pub fn read_column(&self, i: u32, mut dst: Uint8Array) -> Result<()> {
        self.inner.read_column(i as usize, &mut dst)
    }

    /// Buffered mode: copies `src` into stored column `i`, from its first row.
    #[napi]
    pub fn write_column(&mut self, i: u32, src: Uint8Array) -> Result<()> {
        self.inner.write_column(i as usize, &src)
    }

    /// Grows geometrically to at least `min_capacity` rows for rows `writeRows` will write:
    /// the new pages are not faulted in. Returns the capacity.
    #[napi]
    pub fn grow_for_writes(&mut self, env: &Env, min_capacity: f64) -> Result<f64> {
        let min = whole(min_capacity, "capacity")?;
        Ok(self.inner.grow_for_writes(env, min)? as f64)
    }

    /// Writes `src`'s bytes (whole rows) into stored column `i` from row `first_row` on,
    /// through the file: the bulk path of `pushMany`. The length is left alone.
    #[napi]
    pub fn write_rows(&mut self, i: u32, first_row: f64, src: TypedArray) -> Result<()> {
        let row = whole(first_row, "row")?;
        self.inner.write_rows(i as usize, row, &src.arraybuffer)
    }

    /// Overlay mode: `worker_threads.isMarkedAsUntransferable`, asked before an overlay
    /// memory's views are detached (growing a memory whose buffer Node 24 marked aborts).
    #[napi]
    pub fn ask_marks(
        &mut self,
        env: &Env,
        #[napi(ts_arg_type = "(value: object) => boolean")] is_marked: Unknown,
    ) -> Result<()> {
        self.inner.ask_marks(env, is_marked)
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
        self.inner.keep_for_teardown(env, length, &pairs)
    }

    /// Buffered mode: stores the row count in the header.
    #[napi]
    pub fn set_length(&mut self, n: f64) -> Result<()> {
        self.inner.set_len(whole(n, "length")?)
    }

    /// Detaches every view, closes the files and releases the lock.
    #[napi]
    pub fn close(&mut self, env: &Env) {
        self.inner.close(env);
    }
}

impl ObjectFinalize for NativeVec {
    fn finalize(mut self, env: Env) -> Result<()> {
        self.inner.release(&env);
        Ok(())
    }
}

/// Whether ArrayBuffers may point at memory V8 did not allocate (false inside Electron's V8
/// memory cage, where vecs open in buffered mode).
#[napi]
pub fn external_buffers_allowed(env: Env) -> bool {
    node::external_buffers_allowed(&env)
}

/// Detaches an ArrayBuffer V8 allocated: buffered mode empties the views of a column buffer it
/// replaced or closed. Its buffers are marked untransferable (so that a transfer cannot take
/// the rows away), which on Node 20 also stops `structuredClone` from detaching them, but not
/// this call. False when the runtime refused (the buffer cannot be detached).
#[napi]
pub fn detach_buffer(buffer: napi::bindgen_prelude::ArrayBuffer) -> bool {
    buffer.detach().is_ok()
}

/// Puts mmapvec's SIGBUS handler back if something replaced it (see `sys::ensure_installed`):
/// the facade calls it when the program starts or stops listening for SIGBUS, since Node swaps
/// its own handler in and out then.
#[napi]
pub fn guard_signals() -> bool {
    mmapvec_core::sys::ensure_installed()
}

/// Deletes the vec at `path` (ELOCKED while it is open anywhere).
#[napi]
pub fn remove(path: String) -> Result<()> {
    mmapvec_core::MmapVec::remove(Path::new(&path)).map_err(js_error)
}

/// A flush prepared by `NativeVec.flushJob()`, run once on the libuv thread pool.
#[napi]
pub struct FlushJob(Option<SyncJob>);

#[napi]
impl FlushJob {
    #[napi(ts_return_type = "Promise<void>")]
    pub fn run(&mut self) -> AsyncTask<FlushTask> {
        AsyncTask::new(FlushTask(self.0.take().unwrap_or_default()))
    }
}

pub struct FlushTask(SyncJob);

impl Task for FlushTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        self.0.run().map_err(js_error)
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

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
    /// The stored schema, as JSON (fields in stored order, with their files).
    pub schema_json: String,
    pub columns: Vec<ColumnInfoJs>,
    /// `none`, `shared` or `exclusive`.
    pub lock: String,
    pub lock_held_here: bool,
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
            schema_json: i.schema.to_json(),
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
