//! An open vec: its directory's files (`dir.rs`), each column mapped into an address-space
//! reservation of its own so that it grows without moving or copying.
//!
//! This file holds the type, opening it and its accessors (past 500 lines: opening is one
//! concern with many cases: a stored schema or not, races with other creators, sparse copies);
//! its other methods live beside it by concern: `options.rs` says how to open a vec, `io.rs` copies rows in and out of the mappings
//! (the one module of the vec allowed `unsafe`), `grow.rs` grows and shrinks the files and
//! mappings, `prefault.rs` faults new pages in ahead of the writer, `sync.rs` makes writes
//! durable and lets go of the mappings at close, and `schema_change.rs` adds, drops and renames
//! columns.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::dir;
use crate::error::{format_err, Code, Error, Result};
use crate::header::{self, Header, HEADER_FILE};
use crate::live::Live;
use crate::lock::Held;
use crate::schema::Schema;
use crate::sys::{self, FileMap, MapMode, Reservation};

mod follow;
mod grow;
#[allow(unsafe_code)]
mod io;
mod options;
mod prefault;
mod schema_change;
mod sync;

use follow::Follow;
pub use follow::Followed;
use grow::pack_windows;
use options::check_capacity;
pub use options::{OpenOptions, DEFAULT_RESERVATION, PACK_MIN_BYTES};
use prefault::Prefault;
pub use sync::SyncJob;

#[derive(Debug)]
struct ColumnMap {
    file: Arc<File>,
    path: PathBuf,
    row_size: usize,
    /// Where the rows start in the file (and in the reservation).
    offset: u32,
    region: Arc<Reservation>,
    /// Bytes of the file mapped at the start of `region` (a whole number of pages).
    mapped: usize,
    /// The file's size.
    file_len: u64,
    /// The file's size when it was last made durable; a flush after growth syncs its size too.
    synced_len: u64,
}

/// What a growth did, so the caller can revoke views over memory that moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Growth {
    /// Columns whose base address moved (their reservation was too small).
    pub moved: Vec<usize>,
}

/// An open vec.
#[derive(Debug)]
pub struct MmapVec {
    path: PathBuf,
    read_only: bool,
    temp: bool,
    header: Header,
    header_map: Arc<FileMap>,
    columns: Vec<ColumnMap>,
    capacity: u64,
    reservation: usize,
    max_view_bytes: u64,
    view_limit_fix: String,
    prefaults: Vec<Prefault>,
    /// One clone per [`SyncJob`] alive: jobs sync through the mappings, which
    /// [`unmap_columns`](Self::unmap_columns) must then leave alone.
    jobs: Arc<()>,
    /// Bumped before the vec itself shrinks, removes or replaces one of its files, and when it
    /// is closed (the next holder of the lock may do so), so that a flush job made before does
    /// not take that for another program's doing.
    rewrites: Arc<AtomicU64>,
    /// Whether this handle's open created the vec, and the highest parent directory it made
    /// (see [`discard`](Self::discard)).
    created: Option<Option<PathBuf>>,
    /// The live file (see `live.rs`): the writer publishes in it, a reader follows it. None for
    /// a reader of a vec no writer of this mmapvec has opened, and for a writer that could not
    /// make one (a directory it may not write to).
    live: Option<Arc<Live>>,
    /// What a reader has taken of the writer's state (see `follow.rs`).
    follow: Follow,
    /// Whether the writer's last publish was made (see `publish_last`).
    last_published: std::sync::atomic::AtomicBool,
    // Declared last, so dropped last: the lock is released after everything else is dropped.
    /// The lock on the header file (none for a temp vec, which nobody else can reach).
    lock: Option<Held>,
    /// The open header file the lock is on.
    header_file: Arc<File>,
}

/// Bytes of a column file to map for `capacity` rows: whole units of [`sys::map_granularity`].
fn mapped_bytes(capacity: u64, row_size: usize, offset: u32) -> usize {
    let page = sys::map_granularity() as u64;
    (capacity * row_size as u64 + offset as u64).div_ceil(page) as usize * page as usize
}

fn reservation_for(bytes: usize, at_least: usize) -> std::io::Result<Reservation> {
    Reservation::new(bytes.saturating_mul(4).max(at_least))
}

impl ColumnMap {
    /// Whether another program cut the file shorter than the vec made it (a write through the
    /// file, or a growth, would extend it again with zeros where its rows were).
    fn cut_short(&self) -> bool {
        self.file.metadata().is_ok_and(|m| m.len() < self.file_len)
    }
}

impl MmapVec {
    /// Opens the vec at `path` (creating it when missing, if `opts.create`), takes its lock and
    /// maps it. `schema` must match the stored one (fields in any order).
    pub fn open(path: &Path, schema: &Schema, opts: &OpenOptions) -> Result<MmapVec> {
        schema.validate()?;
        check_capacity(path, schema, opts)?;
        if opts.read_only && opts.create_new {
            return Err(Error::new(
                Code::Invalid,
                format!(
                    "{}: readOnly cannot be combined with create; a read-only open never creates",
                    path.display()
                ),
            ));
        }
        // Creating races with other creators; retry the lookup once after losing a race.
        for _ in 0..2 {
            let exists = match dir::check_vec_dir(path) {
                // Something that is not a vec is there: for createNew, that is EEXIST first.
                Err(e) if e.code == Code::Format && opts.create_new => true,
                found => found?,
            };
            if exists {
                if opts.create_new {
                    return Err(Error::new(
                        Code::Exists,
                        format!(
                            "{}: already exists; open it with MmapVec.open, or remove it first with MmapVec.remove",
                            path.display()
                        ),
                    ));
                }
                return Self::open_existing(path, Some(schema), opts);
            }
            if !(opts.create || opts.create_new) || opts.read_only {
                return Err(Error::new(
                    Code::NotFound,
                    format!(
                        "{}: no such vec; open it without `create: false` or `readOnly` to create it",
                        path.display()
                    ),
                ));
            }
            match dir::create_dir_vec(path, schema, opts.version.unwrap_or(0), opts.capacity) {
                Ok(made) => {
                    // A vec this call made and then could not open (no address space for its
                    // reservation, say) is removed again.
                    return match Self::open_existing(path, Some(schema), opts) {
                        Ok(mut v) => {
                            v.created = Some(made);
                            Ok(v)
                        }
                        Err(e) => {
                            dir::remove_created(path, made.as_deref());
                            Err(e)
                        }
                    };
                }
                Err(e) if e.code == Code::Exists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            Code::Exists,
            format!(
                "{}: another process created it while this one did; open it again",
                path.display()
            ),
        ))
    }

    /// Opens the existing vec at `path` with the schema it stores, for callers that do not
    /// know it (tools such as the `mmapvec` command). Never creates: creating needs a schema,
    /// so with nothing at `path` it fails with ENOENT saying so.
    pub fn open_stored(path: &Path, opts: &OpenOptions) -> Result<MmapVec> {
        let needs_schema = || {
            Error::new(
                Code::NotFound,
                format!(
                    "{}: no such vec; creating one needs a schema, e.g. MmapVec.open(path, {{ x: 'f32' }})",
                    path.display()
                ),
            )
        };
        if opts.create_new {
            return Err(Error::new(
                Code::Invalid,
                format!("{}: creating a vec needs a schema", path.display()),
            ));
        }
        if dir::check_vec_dir(path)? {
            Self::open_existing(path, None, opts)
        } else {
            Err(needs_schema())
        }
    }

    /// A scratch vec in the OS temp dir. Its files are unlinked as soon as they are open, so
    /// nothing is left behind after close or a crash.
    pub fn temp(schema: &Schema, opts: &OpenOptions) -> Result<MmapVec> {
        schema.validate()?;
        check_capacity(Path::new("temp vec"), schema, opts)?;
        let mut schema = schema.clone();
        schema.assign_files();
        let dir = dir::create_scratch_dir("creating a temp vec")?;
        let opened = (|| {
            dir::write_vec_files(&dir, &schema, opts.version.unwrap_or(0), opts.capacity)?;
            let header_file = dir::open_header_file(&dir, true)?;
            let files = dir::open_column_files(&dir, &schema, true)?;
            let live = Live::open_writer(&dir, 0)?;
            Ok((header_file, files, live))
        })();
        dir::remove_vec_dir(&dir, &schema);
        let (header_file, files, live) = opened?;
        let mut v = Self::assemble(&dir, header_file, None, files, false, true, opts)?;
        v.live = Some(Arc::new(live));
        if opts.capacity > v.capacity {
            v.grow(opts.capacity, false)?;
        }
        Ok(v)
    }

    /// Closes the vec and, when this handle's open created it, removes it again with the parent
    /// directories made for it: for a program whose first use of a vec it just made failed (a
    /// binding that could not allocate what it needs beside the files), so that a failed open
    /// leaves nothing behind. A vec that existed before is only closed.
    pub fn discard(self) {
        let path = self.path.clone();
        let created = self.created.clone();
        drop(self);
        if let Some(made) = created {
            dir::remove_created(&path, made.as_deref());
        }
    }

    /// Deletes the vec at `path`; fails with ELOCKED while any handle has it open.
    pub fn remove(path: &Path) -> Result<()> {
        dir::remove(path)
    }

    /// Opens an existing vec; its stored schema must match `schema` when one is given.
    fn open_existing(path: &Path, schema: Option<&Schema>, opts: &OpenOptions) -> Result<MmapVec> {
        if opts.read_only {
            return follow::open_reader(path, schema, opts);
        }
        let (header_file, held) = dir::open_header(path, true, opts.lock_timeout)?;
        let files = Self::check_stored(path, &header_file, schema, opts, true)?;
        let mut v = Self::assemble(path, header_file, Some(held), files, false, false, opts)?;
        // Without one (a directory this process may not write to), readers follow the header.
        v.live = Live::open_writer(path, v.len()).ok().map(Arc::new);
        if opts.capacity > v.capacity {
            v.grow(opts.capacity, false)?;
        }
        Ok(v)
    }

    /// Checks the header of an open vec against what the program asked for (its data version,
    /// its schema) and opens its column files.
    fn check_stored(
        path: &Path,
        header_file: &File,
        schema: Option<&Schema>,
        opts: &OpenOptions,
        write: bool,
    ) -> Result<Vec<(File, PathBuf, u64)>> {
        let (stored, _) = dir::read_header(path, header_file)?;
        if let Some(v) = opts.version {
            if v != stored.app_version {
                return Err(Error::new(
                    Code::Version,
                    format!(
                        "{}: the data has version {}, the program asked for version {v}; migrate the data, or open it with version {}",
                        path.display(),
                        stored.app_version,
                        stored.app_version
                    ),
                ));
            }
        }
        if let Some(schema) = schema.filter(|s| !stored.schema.same_fields(s)) {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{}: the stored schema is {}, the program asked for {}: {}",
                    path.display(),
                    stored.schema.describe(),
                    schema.describe(),
                    stored.schema.difference(schema)
                ),
            ));
        }
        dir::open_column_files(path, &stored.schema, write)
    }

    /// Checks sizes and maps a vec whose files are open (and whose header is locked).
    fn assemble(
        path: &Path,
        header_file: File,
        held: Option<Held>,
        files: Vec<(File, PathBuf, u64)>,
        read_only: bool,
        temp: bool,
        opts: &OpenOptions,
    ) -> Result<MmapVec> {
        let (header, length) = dir::read_header(path, &header_file)?;
        let mut capacity = u64::MAX;
        for ((_, fpath, flen), col) in files.iter().zip(&header.schema.columns) {
            let rows = dir::rows_in(*flen, col.offset, col.row_size());
            if rows < length {
                return Err(format_err(
                    path,
                    format!(
                        "damaged: the header says it holds {length} rows, but the column file {} (field '{}') holds only {rows}",
                        fpath.display(),
                        col.name
                    ),
                ));
            }
            let viewable = opts.max_view_bytes / col.row_size() as u64;
            if viewable < length {
                return Err(Error::new(
                    Code::Range,
                    format!(
                        "{}: field '{}' holds {} bytes, more than this runtime can show as one view ({} bytes); {}",
                        path.display(),
                        col.name,
                        length * col.row_size() as u64,
                        opts.max_view_bytes,
                        opts.view_limit_fix
                    ),
                ));
            }
            capacity = capacity.min(rows).min(viewable);
        }
        if !read_only && !temp {
            capacity = grow::reserve_sparse_rows(&files, &header.schema.columns, capacity, length)?;
        }
        let mode = if read_only {
            MapMode::Private
        } else {
            MapMode::Shared
        };
        let header_map = FileMap::new(&header_file, header.header_size, mode)
            .map_err(|e| Error::io(&e, path, "mapping the header"))?;
        let mut columns = Vec::with_capacity(files.len());
        // Only what the capacity needs is mapped: a column file may be longer (a growth a
        // crash interrupted, or damage), and a private mapping of all of it could exhaust memory.
        let sizes: Vec<usize> = header
            .schema
            .columns
            .iter()
            .map(|col| mapped_bytes(capacity, col.row_size(), col.offset))
            .collect();
        let mut windows = pack_windows(&sizes, opts).into_iter();
        for (((file, fpath, flen), col), mapped) in files.into_iter().zip(&header.schema.columns).zip(sizes) {
            let region = match windows.next() {
                Some(w) => w,
                None => reservation_for(mapped, opts.reservation)
                    .map_err(|e| Error::io(&e, &fpath, "reserving address space"))?,
            };
            region
                .map_file(&file, 0, mapped, mode)
                .map_err(|e| Error::io(&e, &fpath, "mapping the column"))?;
            columns.push(ColumnMap {
                file: Arc::new(file),
                path: fpath,
                row_size: col.row_size(),
                offset: col.offset,
                region: Arc::new(region),
                mapped,
                file_len: flen,
                synced_len: flen,
            });
        }
        Ok(MmapVec {
            path: path.to_path_buf(),
            read_only,
            temp,
            header,
            header_map: Arc::new(header_map),
            columns,
            capacity,
            reservation: opts.reservation,
            max_view_bytes: opts.max_view_bytes,
            view_limit_fix: opts.view_limit_fix.clone(),
            prefaults: Vec::new(),
            jobs: Arc::new(()),
            rewrites: Arc::new(AtomicU64::new(0)),
            created: None,
            live: None,
            follow: Follow::default(),
            last_published: std::sync::atomic::AtomicBool::new(false),
            lock: held,
            header_file: Arc::new(header_file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn is_temp(&self) -> bool {
        self.temp
    }

    /// The stored schema (with file names), in stored order.
    pub fn schema(&self) -> &Schema {
        &self.header.schema
    }

    pub fn app_version(&self) -> u64 {
        self.header.app_version
    }

    /// The row count, as stored in the mapped header (JavaScript writes it there); for a
    /// reader, the count it last took from the writer (see [`follow`](Self::follow)).
    pub fn len(&self) -> u64 {
        if self.read_only {
            return self.follow.length.min(self.capacity);
        }
        let raw = self.header_map.read_f64(header::OFF_LENGTH);
        header::decode_length(raw, "")
            .map(|n| n.min(self.capacity))
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the row count. Rows below it must have been written.
    pub fn set_len(&mut self, n: u64) -> Result<()> {
        // The one call of Rust's push loop: like JavaScript's stores of the count, it checks
        // for damage nothing (a store into a header cut short lands in a zero page); the next
        // flush or growth does (`intact`).
        self.not_read_only()?;
        if n == self.len() {
            return Ok(());
        }
        if n > self.capacity {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: length {n} is beyond the capacity {}",
                    self.path.display(),
                    self.capacity
                ),
            ));
        }
        self.header_map.write_f64(header::OFF_LENGTH, n as f64);
        self.publish();
        Ok(())
    }

    /// The writer's last publish, once (at `unguard` or at drop, whichever comes first): the
    /// header's count is read only while its mapping is still guarded, and only an intact
    /// vec's count is published (a header cut short reads zeros).
    fn publish_last(&self) {
        if self.last_published.swap(true, Ordering::AcqRel) || self.read_only {
            return;
        }
        if let Some(l) = &self.live {
            let len = self.len();
            if self.intact().is_ok() {
                l.close_writer(len);
            }
        }
    }

    /// Publishes the row count to the readers beside the writer (its rows are written).
    pub fn publish(&self) {
        if let (Some(l), false) = (&self.live, self.read_only) {
            l.publish(self.len());
        }
    }

    /// Begins a unit of writes that readers' snapshots see whole (buffered mode's write-back;
    /// JavaScript begins its own through the live file's mapping); [`end_unit`](Self::end_unit)
    /// ends it.
    pub fn begin_unit(&self) {
        if let (Some(l), false) = (&self.live, self.read_only) {
            l.begin_unit();
        }
    }

    /// Ends the unit under way, publishing the row count.
    pub fn end_unit(&self) {
        if let (Some(l), false) = (&self.live, self.read_only) {
            l.end_unit(self.len());
        }
    }

    /// The live file (the writer's or the reader's), if the vec has one.
    pub fn live(&self) -> Option<&Arc<Live>> {
        self.live.as_ref()
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Fails with EIO once a page of one of the vec's files faulted under its mapping (another
    /// program cut the file short, or a write into a sparse page found the disk full): from
    /// that page on, the mapping holds zero pages (see `sys::Guard`), so rows read as zeros and
    /// writes to them never reach the file. Every call that changes or syncs the files checks
    /// it, so that nothing is built on, or made durable over, what was lost.
    pub fn intact(&self) -> Result<()> {
        if self.header_map.faulted() {
            return Err(Error::damaged(&self.path, &self.path.join(HEADER_FILE)));
        }
        if let Some(l) = self.live.as_ref().filter(|l| l.faulted()) {
            return Err(Error::damaged(&self.path, l.path()));
        }
        match self.columns.iter().find(|c| c.region.faulted()) {
            Some(c) => Err(Error::damaged(&self.path, &c.path)),
            None => Ok(()),
        }
    }

    fn writable(&self) -> Result<()> {
        self.intact()?;
        self.not_read_only()
    }

    fn not_read_only(&self) -> Result<()> {
        if self.read_only {
            Err(Error::new(
                Code::ReadOnly,
                format!(
                    "{}: opened readOnly; open it without readOnly to change it",
                    self.path.display()
                ),
            ))
        } else {
            Ok(())
        }
    }

    /// The mapped header, and the byte offset of the row count in it.
    pub fn header_region(&self) -> (Arc<FileMap>, usize) {
        (self.header_map.clone(), header::OFF_LENGTH)
    }

    /// How the files are mapped: shared, or private (copy-on-write) for a read-only vec.
    pub fn map_mode(&self) -> MapMode {
        if self.read_only {
            MapMode::Private
        } else {
            MapMode::Shared
        }
    }

    /// The header file and its size, for overlay mode, which maps it a second time.
    pub fn header_file(&self) -> (&File, usize) {
        (&self.header_file, self.header.header_size)
    }

    /// Column `i`'s file and the bytes of it, from its start, that hold the column's offset and
    /// `capacity` rows, rounded up to whole pages: what overlay mode maps a second time. Never
    /// past the file's end (the core maps at least as much of it).
    pub fn column_file(&self, i: usize) -> (Arc<File>, usize) {
        let c = &self.columns[i];
        (c.file.clone(), mapped_bytes(self.capacity, c.row_size, c.offset))
    }

    /// Column `i`'s reservation, where its rows start in it, and how many bytes hold rows
    /// (`capacity * row_size`): what a view may cover. Those bytes are mapped read-write to the
    /// file (privately for a read-only vec), and stay readable and writable while the `Arc`
    /// lives: zero pages once a shrink or a close gives them up.
    pub fn column_region(&self, i: usize) -> (Arc<Reservation>, usize, usize) {
        let c = &self.columns[i];
        (
            c.region.clone(),
            c.offset as usize,
            self.capacity as usize * c.row_size,
        )
    }

    /// Whether any column is a window of a pack (see [`OpenOptions::pack_min_bytes`]).
    pub fn is_packed(&self) -> bool {
        self.columns.iter().any(|c| c.region.pack_of().is_some())
    }

    /// The pack column `i` lives in, if any, and where its rows start from the pack's base. A
    /// view of the whole pack covers the `capacity` rows of each of its columns and the zero
    /// pages between them, all mapped read-write while the pack lives.
    pub fn column_pack(&self, i: usize) -> Option<(Arc<sys::Pack>, usize)> {
        let c = &self.columns[i];
        c.region
            .pack_of()
            .map(|(p, at)| (p.clone(), at + c.offset as usize))
    }
}

impl Drop for MmapVec {
    fn drop(&mut self) {
        self.stop_prefaults();
        // Before the lock goes: a flush job still running must not take what the next holder
        // does to the files (a shrink, a schema change) for another program's damage.
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        // A mapping keeps its open file description alive, and a flock lives as long as that
        // description: the header stays mapped until V8 collects the last view over it, so the
        // lock must be released explicitly here, not left to the file being closed.
        self.publish_last();
        if self.lock.is_some() {
            let _ = sys::unlock(&self.header_file);
        }
    }
}
