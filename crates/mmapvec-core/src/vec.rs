//! A vec on disk: a directory with a header file and one file per column, each column mapped
//! into an address-space reservation of its own so that it grows without moving or copying.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::dir;
use crate::error::{format_err, Code, Error, Result};
use crate::header::{self, Header, HEADER_FILE};
use crate::lock::{self, Held};
use crate::schema::{js_str, Column, ElemType, Schema, COLUMN_ALIGN};
use crate::sys::{self, FileMap, MapMode, Reservation};

/// The smallest capacity growth produces, in rows.
const MIN_GROWTH_ROWS: u64 = 1024;
/// Address space reserved per column by default; a column grows in place inside it.
pub const DEFAULT_RESERVATION: usize = 1 << 30;

/// How to open a vec.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the vec when it is missing.
    pub create: bool,
    /// Fail with EEXIST when the vec exists.
    pub create_new: bool,
    /// Shared lock, private mapping; the facade refuses every write.
    pub read_only: bool,
    /// Rows to make room for (at creation, or at once when opening a smaller vec read-write).
    pub capacity: u64,
    /// How long to wait for the lock; zero fails at once.
    pub lock_timeout: Duration,
    /// The application's data version: stored at creation, checked at open when given.
    pub version: Option<u64>,
    /// Address space to reserve per column at the least (bytes). A column grows in place
    /// within it; past it, the column moves to a reservation four times its size.
    pub reservation: usize,
    /// The largest view the caller can make of one column, in bytes (Node 20 cannot make
    /// ArrayBuffers over memory it did not allocate past 4 GiB). Capacity never goes past it.
    pub max_view_bytes: u64,
    /// Map the columns of a vec that opens with this many mapped bytes or more back to back in
    /// one [`sys::Pack`], so that a caller can show all of them through one view (see
    /// [`MmapVec::column_pack`]); the first growth moves them into reservations of their own.
    /// None: never (the default). The Node binding uses [`PACK_MIN_BYTES`].
    pub pack_min_bytes: Option<usize>,
}

/// The mapped bytes from which the Node binding packs an opened vec's columns
/// ([`OpenOptions::pack_min_bytes`]).
/// V8 counts every ArrayBuffer's bytes as external memory and, on Node 20, each new buffer that
/// takes the count 64 MiB past its level at the last full collection makes it mark the heap
/// then and there; a vec of five columns opened at 1 GiB paid that four times over (0.85 ms
/// median per open, against 0.23 ms through one view).
pub const PACK_MIN_BYTES: usize = 64 << 20;

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: true,
            create_new: false,
            read_only: false,
            capacity: 0,
            lock_timeout: Duration::ZERO,
            version: None,
            reservation: DEFAULT_RESERVATION,
            max_view_bytes: u64::MAX,
            pack_min_bytes: None,
        }
    }
}

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
    prefaults: Vec<Prefault>,
    /// One clone per [`SyncJob`] alive: jobs sync through the mappings, which
    /// [`unmap_columns`](Self::unmap_columns) must then leave alone.
    jobs: Arc<()>,
    /// Bumped before the vec itself shrinks, removes or replaces one of its files, and when it
    /// is closed (the next holder of the lock may do so), so that a flush job made before does
    /// not take that for another program's doing.
    rewrites: Arc<AtomicU64>,
    // Declared last: the lock is released after everything else is dropped.
    _held: Option<Held>,
    _header_file: Arc<File>,
}

/// Reserves the disk blocks of `file`'s first `len` bytes (no more than it has) when fewer
/// blocks than that are allocated, so that a store into them on a full disk is ENOSPC now instead of SIGBUS later.
/// The file's contents and times stay as they were (only blocks are added). A file system that
/// cannot reserve blocks leaves the file as it is.
fn reserve_blocks(file: &File, path: &Path, len: u64) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(&e, path, "reading its size"))?;
    let len = len.min(meta.len());
    if sys::allocated_bytes(file).is_ok_and(|n| n >= len) {
        return Ok(());
    }
    sys::allocate(file, len).map_err(|e| {
        let mut err = Error::io(&e, path, "reserving its disk blocks");
        if err.code == Code::NoSpace {
            err.message = format!(
                "{}: the file is sparse (a copy made with cp --sparse or rsync -S, or a restored backup) and the disk has no room for the {len} bytes its rows need; free space on the disk, or copy the vec without sparse files",
                path.display()
            );
        }
        err
    })?;
    // Reserving blocks is not a change of contents: the modification time stays.
    if let (Ok(accessed), Ok(modified)) = (meta.accessed(), meta.modified()) {
        let _ = file.set_times(fs::FileTimes::new().set_accessed(accessed).set_modified(modified));
    }
    Ok(())
}

/// How much of each column a growth by `push` faults in ahead of the writer.
const PREFAULT_BYTES: usize = 64 << 20;

/// Faults the pages a growth added into memory on a thread of its own, a chunk of each column
/// at a time in row order, ahead of the pushes that will write them. A first write to a page of
/// a file mapping costs a few microseconds of kernel work (page-cache insertion, `page_mkwrite`),
/// which made pushing into fresh pages about twice as slow as into present ones; done here, that
/// work runs on another core. Pages are only faulted in, never changed. The thread owns the
/// reservations it touches; the vec stops it (between two chunks) before it shrinks or closes,
/// so that nothing touches its files once it is closed.
#[derive(Debug)]
struct Prefault {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Prefault {
    fn start(ranges: Vec<(Arc<Reservation>, usize, usize)>) -> Option<Prefault> {
        const CHUNK: usize = 256 << 10;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mmapvec-prefault".into())
            .spawn(move || {
                let mut at = 0;
                while !flag.load(Ordering::Relaxed) && ranges.iter().any(|(_, from, to)| from + at < *to) {
                    for (region, from, to) in &ranges {
                        if from + at < *to {
                            region.populate_write(from + at, (from + at + CHUNK).min(*to));
                        }
                    }
                    at += CHUNK;
                }
            })
            // Without a thread (resource limits), pushes simply fault the pages in themselves.
            .ok()?;
        Some(Prefault { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Refuses, before anything touches the disk, a `capacity` option that no view could show.
fn check_capacity(path: &Path, schema: &Schema, opts: &OpenOptions) -> Result<()> {
    let widest = schema
        .columns
        .iter()
        .map(|c| c.row_size() as u64)
        .max()
        .unwrap_or(1);
    if opts.capacity > opts.max_view_bytes / widest {
        return Err(Error::new(
            Code::Range,
            format!(
                "{}: a capacity of {} rows would make a column larger than this runtime can show as one view ({} bytes); use Node 22 or newer, or split the data",
                path.display(),
                opts.capacity,
                opts.max_view_bytes
            ),
        ));
    }
    if opts.reservation as u64 > MAX_RESERVATION {
        return Err(Error::new(
            Code::Invalid,
            format!(
                "{}: a reservation of {} bytes per column is more address space than a 64-bit process has (at most 2^47 bytes); leave it at the default of 1 GiB or choose less",
                path.display(),
                opts.reservation
            ),
        ));
    }
    Ok(())
}

/// The most address space a column may reserve: x86-64 and arm64 give user space 2^47 bytes.
const MAX_RESERVATION: u64 = 1 << 47;

/// Bytes of a column file to map for `capacity` rows: whole units of [`sys::map_granularity`].
fn mapped_bytes(capacity: u64, row_size: usize, offset: u32) -> usize {
    let page = sys::map_granularity() as u64;
    (capacity * row_size as u64 + offset as u64).div_ceil(page) as usize * page as usize
}

fn reservation_for(bytes: usize, at_least: usize) -> io::Result<Reservation> {
    Reservation::new(bytes.saturating_mul(4).max(at_least))
}

/// Windows of one pack for columns of `sizes` mapped bytes, when `opts` asks for packing and
/// the vec is large enough for it to matter; else none (each column gets a reservation). A
/// pack that cannot be made (no address space, or Windows) is no error: the columns are then
/// reserved one by one.
fn pack_windows(sizes: &[usize], opts: &OpenOptions) -> Vec<Reservation> {
    let total = sizes.iter().fold(0usize, |a, &b| a.saturating_add(b));
    if sizes.len() < 2 || opts.pack_min_bytes.is_none_or(|min| total < min) {
        return Vec::new();
    }
    match sys::PackLayout::new(sizes) {
        Some(layout) if layout.len as u64 <= opts.max_view_bytes => {
            Reservation::pack(&layout).unwrap_or_default()
        }
        _ => Vec::new(),
    }
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
                    return Self::open_existing(path, Some(schema), opts)
                        .inspect_err(|_| dir::remove_created(path, made.as_deref()));
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
            Ok((header_file, files))
        })();
        let _ = fs::remove_dir_all(&dir);
        let (header_file, files) = opened?;
        let mut v = Self::assemble(&dir, header_file, None, files, false, true, opts)?;
        if opts.capacity > v.capacity {
            v.grow(opts.capacity, false)?;
        }
        Ok(v)
    }

    /// Deletes the vec at `path`; fails with ELOCKED while any handle has it open.
    pub fn remove(path: &Path) -> Result<()> {
        dir::remove(path)
    }

    /// Opens an existing vec; its stored schema must match `schema` when one is given.
    fn open_existing(path: &Path, schema: Option<&Schema>, opts: &OpenOptions) -> Result<MmapVec> {
        let (header_file, held) = dir::open_header(path, !opts.read_only, opts.lock_timeout)?;
        let (stored, _) = dir::read_header(path, &header_file)?;
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
        let files = dir::open_column_files(path, &stored.schema, !opts.read_only)?;
        let mut v = Self::assemble(path, header_file, Some(held), files, opts.read_only, false, opts)?;
        if !opts.read_only && opts.capacity > v.capacity {
            v.grow(opts.capacity, false)?;
        }
        Ok(v)
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
                        "{}: field '{}' holds {} bytes, more than this runtime can show as one view ({} bytes); open it with Node 22 or newer",
                        path.display(),
                        col.name,
                        length * col.row_size() as u64,
                        opts.max_view_bytes
                    ),
                ));
            }
            capacity = capacity.min(rows).min(viewable);
        }
        // A sparse copy (cp --sparse, rsync -S, a restored backup) has holes where the files
        // had zeros, past the rows and often among them: fewer blocks than what would be mapped
        // (mmapvec's own files have all of theirs). The rows' blocks are reserved (a store
        // there must not fault on a full disk) and the capacity is cut to the rows: the next
        // growth reserves the rest, failing with ENOSPC if it must, instead of this open
        // reserving all the space the files claim.
        if !read_only && !temp {
            let holes = files
                .iter()
                .zip(&header.schema.columns)
                .any(|((file, _, size), col)| {
                    let mapped = (mapped_bytes(capacity, col.row_size(), col.offset) as u64).min(*size);
                    sys::allocated_bytes(file).is_ok_and(|n| n < mapped)
                });
            if holes {
                capacity = capacity.min(length);
                for ((file, fpath, _), col) in files.iter().zip(&header.schema.columns) {
                    reserve_blocks(
                        file,
                        fpath,
                        mapped_bytes(capacity, col.row_size(), col.offset) as u64,
                    )?;
                }
            }
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
            prefaults: Vec::new(),
            jobs: Arc::new(()),
            rewrites: Arc::new(AtomicU64::new(0)),
            _held: held,
            _header_file: Arc::new(header_file),
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

    /// The row count, as stored in the mapped header (JavaScript writes it there).
    pub fn len(&self) -> u64 {
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
        Ok(())
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
        (&self._header_file, self.header.header_size)
    }

    /// Column `i`'s file and the bytes of it, from its start, that hold the column's offset and
    /// `capacity` rows, rounded up to whole pages: what overlay mode maps a second time. Never
    /// past the file's end (the core maps at least as much of it).
    pub fn column_file(&self, i: usize) -> (Arc<File>, usize) {
        let c = &self.columns[i];
        (c.file.clone(), mapped_bytes(self.capacity, c.row_size, c.offset))
    }

    /// Column `i`'s reservation, where its rows start in it, and how many bytes hold rows
    /// (`capacity * row_size`): what a view may cover.
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

    /// Where column `i`'s rows start in memory, after checking that `bytes` of them fit its
    /// capacity (`doing` names the copy in the error).
    fn column_start(&self, i: usize, bytes: usize, doing: &str) -> Result<*mut u8> {
        let (region, offset, len) = self.column_region(i);
        if bytes > len {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: {doing} {bytes} bytes of a {len}-byte column",
                    self.path.display()
                ),
            ));
        }
        Ok(region.base().wrapping_add(offset))
    }

    /// Copies column `i`'s first `dst.len()` bytes (at most its capacity) out of the mapping.
    pub fn read_column(&self, i: usize, dst: &mut [u8]) -> Result<()> {
        let start = self.column_start(i, dst.len(), "reading")?;
        // SAFETY: the column's capacity bytes from `start` are mapped to its file (the capacity
        // invariant), `dst` is no larger (checked), and `dst` is not inside the mapping (it is
        // a `&mut` the caller owns, which no mapped range can be).
        unsafe { std::ptr::copy_nonoverlapping(start, dst.as_mut_ptr(), dst.len()) };
        // A page the copy touched may have faulted (the file was cut short): what was read is
        // not the file's.
        self.intact()
    }

    /// Copies `src` into column `i` from its first row on (buffered mode's write-back).
    pub fn write_column(&mut self, i: usize, src: &[u8]) -> Result<()> {
        self.writable()?;
        let base = self.column_start(i, src.len(), "writing")?;
        // Only pages whose bytes differ are written: an unchanged page stays clean, so a flush
        // writes what changed and the file's mtime moves only when its contents do.
        const CHUNK: usize = 4096;
        for (k, part) in src.chunks(CHUNK).enumerate() {
            // SAFETY: as in `read_column`: `[base, base + src.len())` is mapped (shared and
            // writable, the vec is not read-only) and does not overlap `src`; only the
            // column's own bytes are read, compared and written.
            unsafe {
                let dst = base.add(k * CHUNK);
                if std::slice::from_raw_parts(dst, part.len()) != part {
                    std::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
                }
            }
        }
        // As in `read_column`: a fault during the copy means the bytes did not reach the file.
        self.intact()
    }

    /// Writes whole rows of column `i`, from row `first_row` on, through the file (pwrite)
    /// instead of the mapping: the bulk path of `pushMany`. A first store into a page of a file
    /// mapping makes the kernel read the page in (zeroing it, for reserved blocks) before the
    /// store overwrites it, which bounds a copy into fresh pages at about 1 GB/s here; a write
    /// that covers whole pages skips that. The rows must lie within the capacity; the length is
    /// left alone, so on a failure (the bytes were partly written) no row changes.
    pub fn write_rows(&mut self, i: usize, first_row: u64, src: &[u8]) -> Result<()> {
        self.writable()?;
        let c = self
            .columns
            .get(i)
            .ok_or_else(|| Error::new(Code::Invalid, format!("{}: no column {i}", self.path.display())))?;
        let rows = (src.len() / c.row_size) as u64;
        if !src.len().is_multiple_of(c.row_size) || first_row.saturating_add(rows) > self.capacity {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: writing {} bytes at row {first_row} of a column of {}-byte rows and capacity {}",
                    self.path.display(),
                    src.len(),
                    c.row_size,
                    self.capacity
                ),
            ));
        }
        // A file cut short under the vec would be extended again by the write, with zeros where
        // its rows were.
        if c.cut_short() {
            return Err(Error::damaged(&self.path, &c.path));
        }
        let at = c.offset as u64 + first_row * c.row_size as u64;
        sys::write_at(&c.file, src, at).map_err(|e| Error::io(&e, &c.path, "writing rows"))
    }

    /// Grows the capacity to at least `min_capacity` rows: geometrically (at least doubling)
    /// when `geometric`, else exactly (rounded up to pages). Files are extended with reserved
    /// blocks; mappings grow in place unless a reservation is too small (see [`Growth`]).
    /// On failure the vec keeps its old capacity and every row.
    pub fn grow(&mut self, min_capacity: u64, geometric: bool) -> Result<Growth> {
        self.grow_with(min_capacity, geometric, geometric)
    }

    /// Grows geometrically, as `grow(min_capacity, true)`, but leaves the new pages alone: for
    /// rows that [`write_rows`](Self::write_rows) will write through the file, where faulting
    /// them in first would only zero pages that are about to be overwritten.
    pub fn grow_for_writes(&mut self, min_capacity: u64) -> Result<Growth> {
        self.grow_with(min_capacity, true, false)
    }

    fn grow_with(&mut self, min_capacity: u64, geometric: bool, prefault: bool) -> Result<Growth> {
        self.writable()?;
        // A file another program cut short would be extended again with zeros where its rows
        // were, as if nothing had happened.
        if let Some(c) = self.columns.iter().find(|c| c.cut_short()) {
            return Err(Error::damaged(&self.path, &c.path));
        }
        if min_capacity <= self.capacity {
            return Ok(Growth::default());
        }
        let viewable = self.viewable_rows();
        if min_capacity > viewable {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{}: {min_capacity} rows would make a column larger than this runtime can show as one view ({} bytes); use Node 22 or newer, or split the data",
                    self.path.display(),
                    self.max_view_bytes
                ),
            ));
        }
        let target = if geometric {
            min_capacity
                .max(self.capacity.saturating_mul(2))
                .max(MIN_GROWTH_ROWS)
                .min(viewable)
        } else {
            min_capacity
        };
        let mut sizes = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            sizes.push(dir::file_bytes(target, c.row_size, c.offset)?);
        }
        // Phase 1: extend every file. If one fails, give the others back their old size.
        for (i, c) in self.columns.iter().enumerate() {
            // A file already long enough (a sparse copy, whose capacity open cut to the rows, or
            // a growth a crash interrupted) may have holes where the new pages go: their blocks
            // are reserved all the same.
            let holes =
                sizes[i] > c.mapped as u64 && sys::allocated_bytes(&c.file).is_ok_and(|n| n < sizes[i]);
            if sizes[i] <= c.file_len && !holes {
                continue;
            }
            if let Err(e) = sys::allocate(&c.file, sizes[i]) {
                for c in &self.columns[..=i] {
                    if c.file.metadata().map(|m| m.len() > c.file_len).unwrap_or(false) {
                        let _ = c.file.set_len(c.file_len);
                    }
                }
                return Err(Error::io(&e, &c.path, "growing the column file"));
            }
        }
        // Phase 2: map the new pages. A column whose reservation is too small moves.
        for (i, c) in self.columns.iter_mut().enumerate() {
            c.file_len = sizes[i].max(c.file_len);
        }
        // No more than the target: a file already longer than it (a sparse copy, or a growth a
        // crash interrupted) had only the target's blocks reserved above.
        let reserved = self
            .columns
            .iter()
            .zip(&sizes)
            .map(|(c, &n)| dir::rows_in(n, c.offset, c.row_size))
            .min()
            .unwrap_or(target);
        let capacity = self.fit_capacity().min(reserved);
        let old_mapped: Vec<usize> = self.columns.iter().map(|c| c.mapped).collect();
        let mut growth = Growth::default();
        let mode = MapMode::Shared;
        // A pack has no room to grow in: every column of it moves, even one that needs no new
        // pages, so that no view ever covers a window whose column has left it. The columns
        // that move are all mapped anew before any of them leaves its old memory: a window
        // goes back to zero pages once its column leaves it, and a failure halfway must leave
        // the views over the pack reaching the files.
        let mut moves = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let new_mapped = mapped_bytes(capacity, c.row_size, c.offset).max(c.mapped);
            if new_mapped > c.region.len() || c.region.pack_of().is_some() {
                let region = reservation_for(new_mapped, self.reservation)
                    .map_err(|e| Error::io(&e, &c.path, "reserving address space"))?;
                region
                    .map_file(&c.file, 0, new_mapped, mode)
                    .map_err(|e| Error::io(&e, &c.path, "mapping the grown column"))?;
                moves.push((i, region, new_mapped));
            }
        }
        for (i, region, new_mapped) in moves {
            let c = &mut self.columns[i];
            // Its views are detached (or get zero pages) as it leaves: nothing touches it again.
            c.region.unguard();
            c.region = Arc::new(region);
            c.mapped = new_mapped;
            growth.moved.push(i);
        }
        for c in &mut self.columns {
            let new_mapped = mapped_bytes(capacity, c.row_size, c.offset);
            if new_mapped <= c.mapped {
                continue;
            }
            let unit = sys::map_granularity();
            let from = c.mapped / unit * unit;
            c.region
                .map_file(&c.file, from, new_mapped, mode)
                .map_err(|e| Error::io(&e, &c.path, "mapping the grown column"))?;
            c.mapped = new_mapped;
        }
        if prefault {
            let ranges = self
                .columns
                .iter()
                .zip(old_mapped)
                .map(|(c, from)| (c.region.clone(), from, c.mapped.min(from + PREFAULT_BYTES)))
                .collect();
            self.prefaults.retain(|p| !p.thread.is_finished());
            self.prefaults.extend(Prefault::start(ranges));
        }
        self.capacity = capacity;
        Ok(growth)
    }

    /// Shrinks every column file to the pages the current rows need. Whoever handed out
    /// pointers into the columns (views) must revoke them first: the memory past the new end
    /// becomes private zero pages.
    pub fn shrink_to_fit(&mut self) -> Result<()> {
        self.writable()?;
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        self.stop_prefaults();
        let len = self.len();
        let mut failed = None;
        for c in &mut self.columns {
            let new_len = match dir::file_bytes(len, c.row_size, c.offset) {
                Ok(n) => n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if new_len >= c.file_len {
                continue;
            }
            let keep = new_len as usize;
            let done = c
                .region
                .zero_range(keep, c.mapped)
                .map_err(|e| Error::io(&e, &c.path, "unmapping the freed pages"))
                .and_then(|()| {
                    c.file
                        .set_len(new_len)
                        .map_err(|e| Error::io(&e, &c.path, "shrinking the column file"))
                });
            match done {
                Ok(()) => {
                    c.mapped = keep;
                    c.file_len = new_len;
                }
                Err(e) => {
                    // The file keeps its size (Windows, for one, refuses to truncate a file that
                    // a mapping still covers): map its pages back, so the capacity stays backed
                    // by the file. Failing that, only what is still mapped counts as capacity.
                    if c.region
                        .map_file(&c.file, keep, c.mapped, MapMode::Shared)
                        .is_err()
                    {
                        c.mapped = keep;
                        c.file_len = new_len;
                    }
                    failed = Some(e);
                    break;
                }
            }
        }
        // Also after a failure: columns shrunk before it must not count their freed rows.
        self.capacity = self.fit_capacity().max(len);
        failed.map_or(Ok(()), Err)
    }

    /// The rows every column file has room for and every view can show.
    fn fit_capacity(&self) -> u64 {
        self.columns
            .iter()
            .map(|c| dir::rows_in(c.file_len, c.offset, c.row_size))
            .min()
            .unwrap_or(0)
            .min(self.viewable_rows())
    }

    /// The most rows a view of every column can show.
    fn viewable_rows(&self) -> u64 {
        self.columns
            .iter()
            .map(|c| self.max_view_bytes / c.row_size as u64)
            .min()
            .unwrap_or(0)
    }

    /// Asks the kernel to read rows `[start, end)` of every column ahead.
    pub fn prefetch(&self, start: u64, end: u64) -> Result<()> {
        self.intact()?;
        let end = end.min(self.capacity);
        for c in &self.columns {
            let at =
                |row: u64| (row.saturating_mul(c.row_size as u64) as usize).saturating_add(c.offset as usize);
            let (from, to) = (at(start), at(end));
            c.region
                .will_need(from, to)
                .map_err(|e| Error::io(&e, &c.path, "prefetching"))?;
        }
        Ok(())
    }

    /// A job that makes everything written so far durable: column data first, then the
    /// header that claims it. It owns what it touches, so it may run on another thread while
    /// this vec grows or closes.
    pub fn sync_job(&mut self) -> SyncJob {
        // Something may have replaced the SIGBUS handler since the vec was opened (Node does
        // while a program listens with `process.on('SIGBUS')`): every flush puts it back.
        sys::ensure_installed();
        if self.read_only || self.temp {
            return SyncJob::default();
        }
        let columns = self
            .columns
            .iter_mut()
            .map(|c| {
                let resized = c.synced_len != c.file_len;
                c.synced_len = c.file_len;
                SyncPart {
                    region: c.region.clone(),
                    len: c.mapped,
                    file: (resized || !sys::MAP_SYNC_REACHES_DISK).then(|| c.file.clone()),
                    handle: c.file.clone(),
                    file_len: c.file_len,
                    path: c.path.clone(),
                }
            })
            .collect();
        SyncJob {
            vec: self.path.clone(),
            columns,
            header: Some((self.header_map.clone(), self.path.join(HEADER_FILE))),
            header_file: (!sys::MAP_SYNC_REACHES_DISK).then(|| self._header_file.clone()),
            header_handle: Some(self._header_file.clone()),
            _busy: Some(self.jobs.clone()),
            rewrites: Some((self.rewrites.clone(), self.rewrites.load(Ordering::Acquire))),
        }
    }

    /// For a close once every view is revoked: puts private zero pages over the columns' file
    /// pages, so the files are let go at once. Otherwise they stay mapped until the last
    /// revoked ArrayBuffer's finalizer runs, which Node defers to a later turn of the event
    /// loop: a program that closed and deleted vecs in one synchronous stretch kept every one
    /// of them mapped, and the kernel wrote their dirty pages back, deleted files and all. A
    /// native reader still holding a pointer into a column (an in-flight `fs.write` from a
    /// view) reads zeros. Unmapping costs about 0.35 µs per page the program touched (20 ms
    /// for 200 MB), so it runs on a thread of its own, which owns the reservations meanwhile.
    /// Left to the finalizers while a flush job, which syncs through the mappings, is alive, and
    /// where no thread can be started.
    pub fn unmap_columns(&mut self) {
        if Arc::strong_count(&self.jobs) > 1 {
            return;
        }
        self.stop_prefaults();
        // A reservation nothing else holds (no view was ever made over it, as in overlay and
        // buffered modes) is unmapped when the vec drops, right after this. A pack's windows go
        // to the thread too: views hold the pack, not the window, whose drop would otherwise
        // put zero pages back on this thread.
        let ranges: Vec<(Arc<Reservation>, usize)> = self
            .columns
            .iter_mut()
            .filter(|c| Arc::strong_count(&c.region) > 1 || c.region.pack_of().is_some())
            .map(|c| (c.region.clone(), std::mem::take(&mut c.mapped)))
            .collect();
        if ranges.is_empty() {
            return;
        }
        // Without a thread (resource limits), the finalizers unmap them later, as before.
        let _ = std::thread::Builder::new()
            .name("mmapvec-unmap".into())
            .spawn(move || {
                for (region, mapped) in ranges {
                    // On a failure the file stays mapped until the finalizers drop the region.
                    let _ = region.zero_range(0, mapped);
                }
            });
    }

    /// Gives back the SIGBUS guards of every mapping (see `sys::Guard::release`): for `close`,
    /// once no view can touch them any more (detached, or given zero pages). Mappings views
    /// still hold may outlive the vec until V8 collects them, and a program that opens and
    /// closes vecs in a loop would otherwise run the guard table out.
    pub fn unguard(&self) {
        self.header_map.unguard();
        for c in &self.columns {
            c.region.unguard();
        }
    }

    /// Makes everything written so far durable, on this thread.
    pub fn flush(&mut self) -> Result<()> {
        self.sync_job().run()
    }
}

/// Schema changes. Each is atomic on disk: what it needs is prepared under names nothing reads
/// (a new column file, a new header written beside the live one), made durable, and committed
/// by renaming the new header over the old one, so a crash leaves the old schema or the new one.
/// Each first makes everything written before it durable (a flush). Existing rows are never
/// rewritten. See docs/FORMAT.md, "Schema changes".
impl MmapVec {
    /// Adds a column; every row, existing and new, reads zero in it until written. The new
    /// column file is sized to the current capacity with reserved (not written) blocks.
    pub fn add_column(&mut self, name: &str, ty: ElemType, count: u32) -> Result<()> {
        self.changeable("addColumn")?;
        let p = self.path.display().to_string();
        if self.column_index(name).is_some() {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{p}: addColumn: the vec already has a column {}; choose another name, or drop that column first with vec.dropColumn({})",
                    js_str(name),
                    js_str(name)
                ),
            ));
        }
        let n = self.next_file_number();
        let col = Column {
            name: name.to_string(),
            ty,
            count,
            file: format!("c{n}.col"),
            // As at creation: neighbouring columns start a cache line apart (see assign_files).
            offset: (n % 64) as u32 * COLUMN_ALIGN,
        };
        let mut schema = self.header.schema.clone();
        schema.columns.push(col.clone());
        schema
            .validate()
            .map_err(|e| Error::new(e.code, format!("{p}: addColumn: {}", e.message)))?;
        if self.capacity > self.max_view_bytes / col.row_size() as u64 {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{p}: addColumn: a column of {} rows of {} bytes would be larger than this runtime can show as one view ({} bytes); use Node 22 or newer",
                    self.capacity,
                    col.row_size(),
                    self.max_view_bytes
                ),
            ));
        }
        self.remove_leftovers();
        self.flush()?;
        let (dir, scratch) = self.new_files_dir()?;
        let prepared = self.prepare_column(&dir, &col);
        if let Some(d) = scratch {
            let _ = fs::remove_dir_all(d);
        }
        let column = prepared?;
        match self.replace_header(schema) {
            Ok(late) => {
                self.columns.push(column);
                late.map_or(Ok(()), Err)
            }
            Err(e) => {
                if !self.temp {
                    let _ = fs::remove_file(&column.path);
                }
                Err(e)
            }
        }
    }

    /// Removes a column and its data; the column file is deleted once the new header is durable.
    /// Whoever handed out pointers into the column (views) must revoke them after this.
    pub fn drop_column(&mut self, name: &str) -> Result<()> {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        self.changeable("dropColumn")?;
        let p = self.path.display().to_string();
        let i = self
            .column_index(name)
            .ok_or_else(|| self.unknown_column("dropColumn", name))?;
        if self.header.schema.columns.len() == 1 {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{p}: dropColumn: {} is the vec's only column, and a vec has at least one; add another column first, or delete the whole vec with MmapVec.remove",
                    js_str(name)
                ),
            ));
        }
        self.remove_leftovers();
        self.flush()?;
        // The prefault thread may be touching the column's pages; it must not outlive them.
        self.stop_prefaults();
        let mut schema = self.header.schema.clone();
        schema.columns.remove(i);
        let late = self.replace_header(schema)?;
        let column = self.columns.remove(i);
        column.region.unguard();
        // Only once the header without it is durable: before that, a power cut could bring
        // back the old header, which needs the file. Left in place, it is an orphan that the
        // next read-write open removes.
        if late.is_none() && !self.temp {
            let _ = fs::remove_file(&column.path);
        }
        late.map_or(Ok(()), Err)
    }

    /// Renames a column; its data stays where it is. Renaming to the same name does nothing.
    pub fn rename_column(&mut self, from: &str, to: &str) -> Result<()> {
        self.changeable("renameColumn")?;
        let p = self.path.display().to_string();
        let i = self
            .column_index(from)
            .ok_or_else(|| self.unknown_column("renameColumn", from))?;
        if from == to {
            return Ok(());
        }
        if self.column_index(to).is_some() {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{p}: renameColumn: the vec already has a column {}; drop it first with vec.dropColumn({}), or choose another name",
                    js_str(to),
                    js_str(to)
                ),
            ));
        }
        let mut schema = self.header.schema.clone();
        schema.columns[i].name = to.to_string();
        schema
            .validate()
            .map_err(|e| Error::new(e.code, format!("{p}: renameColumn: {}", e.message)))?;
        self.remove_leftovers();
        self.flush()?;
        self.replace_header(schema)?.map_or(Ok(()), Err)
    }

    /// Removes what an earlier change a crash cut off left behind (see [`remove_orphans`]).
    /// Done here rather than at open, so that opening never changes a vec's files.
    fn remove_leftovers(&self) {
        if !self.temp {
            dir::remove_orphans(&self.path, &self.header.schema);
        }
    }

    fn changeable(&self, what: &str) -> Result<()> {
        self.writable()?;
        if self.header.schema.scalar {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{}: {what}: this is a vec of plain values ({}), which has no named columns; schema changes apply to vecs of fields. Copy the rows into a new vec with fields instead",
                    self.path.display(),
                    self.header.schema.describe()
                ),
            ));
        }
        Ok(())
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.header.schema.columns.iter().position(|c| c.name == name)
    }

    fn unknown_column(&self, what: &str, name: &str) -> Error {
        let names: Vec<String> = self
            .header
            .schema
            .columns
            .iter()
            .map(|c| js_str(&c.name))
            .collect();
        Error::new(
            Code::Schema,
            format!(
                "{}: {what}: the vec has no column {}; its columns are {}",
                self.path.display(),
                js_str(name),
                names.join(", ")
            ),
        )
    }

    /// One more than any column file number the header or the directory uses, so a new column
    /// never gets the name of a file that exists (an orphan of an interrupted change).
    fn next_file_number(&self) -> u64 {
        let mut max = self
            .header
            .schema
            .columns
            .iter()
            .filter_map(|c| dir::column_file_number(&c.file))
            .max();
        if !self.temp {
            if let Ok(entries) = fs::read_dir(&self.path) {
                for e in entries.flatten() {
                    if let Some(n) = e.file_name().to_str().and_then(dir::column_file_number) {
                        max = max.max(Some(n));
                    }
                }
            }
        }
        max.map_or(0, |m| m + 1)
    }

    /// Where a change creates files: the vec's directory, or for a temp vec (whose directory is
    /// gone) a scratch directory, returned second, that the caller removes once the files are open.
    fn new_files_dir(&self) -> Result<(PathBuf, Option<PathBuf>)> {
        if !self.temp {
            return Ok((self.path.clone(), None));
        }
        let dir = dir::create_scratch_dir("changing a temp vec's schema")?;
        Ok((dir.clone(), Some(dir)))
    }

    /// Creates, sizes (reserved blocks, zero), syncs and maps a new column file in `dir`.
    fn prepare_column(&self, dir: &Path, col: &Column) -> Result<ColumnMap> {
        let (file, size) = dir::create_column_file(dir, col, self.capacity)?;
        let cp = dir.join(&col.file);
        let mapped = mapped_bytes(self.capacity, col.row_size(), col.offset);
        let made = (|| {
            let region = reservation_for(mapped, self.reservation)
                .map_err(|e| Error::io(&e, &cp, "reserving address space"))?;
            region
                .map_file(&file, 0, mapped, MapMode::Shared)
                .map_err(|e| Error::io(&e, &cp, "mapping the column"))?;
            Ok(region)
        })();
        let region = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_file(&cp);
                return Err(e);
            }
        };
        Ok(ColumnMap {
            file: Arc::new(file),
            path: self.path.join(&col.file),
            row_size: col.row_size(),
            offset: col.offset,
            region: Arc::new(region),
            mapped,
            file_len: size,
            synced_len: size,
        })
    }

    /// Writes `schema` into a new header file with the current row count, locks and maps it,
    /// makes it durable, and renames it over the live header: the commit point. `Err`: nothing
    /// changed. `Ok(Some(e))`: the change is made (in memory and in the directory), but making
    /// the rename durable failed with `e`.
    fn replace_header(&mut self, schema: Schema) -> Result<Option<Error>> {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        let mut bytes = Header::encode_for(&schema, self.header.app_version, &self.header.arch)?;
        // The count JavaScript keeps in the mapped header, carried over exactly; JavaScript
        // cannot run during this call, so it cannot change meanwhile.
        let len = self.header_map.read_f64(header::OFF_LENGTH);
        bytes[header::OFF_LENGTH..header::OFF_LENGTH + 8].copy_from_slice(&len.to_ne_bytes());
        let hp = self.path.join(HEADER_FILE);
        let (dir, scratch) = self.new_files_dir()?;
        let tmp = dir::header_tmp_path(&dir);
        let prepared = (|| {
            use std::io::Write;
            let mut f = sys::open_file(&tmp, true, true)
                .map_err(|e| Error::io(&e, &tmp, "writing the new header"))?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(&e, &tmp, "writing the new header"))?;
            // Locked before it becomes the live header, so that no opener ever finds it unlocked.
            let held = match self._held {
                Some(_) => Some(lock::lock(&f, true, Duration::ZERO, &self.path)?),
                None => None,
            };
            let map = FileMap::new(&f, bytes.len(), MapMode::Shared)
                .map_err(|e| Error::io(&e, &tmp, "mapping the new header"))?;
            Ok((f, held, map))
        })();
        if let Some(d) = scratch {
            let _ = fs::remove_dir_all(d);
        }
        let (file, held, map) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if !self.temp {
            if let Err(e) = fs::rename(&tmp, &hp) {
                let _ = fs::remove_file(&tmp);
                return Err(Error::io(&e, &hp, "replacing the header"));
            }
        }
        let header_size = bytes.len();
        self.header = Header {
            app_version: self.header.app_version,
            schema,
            arch: self.header.arch.clone(),
            header_size,
        };
        // The old header's mapping lives on while JavaScript views over it do; the facade
        // detaches them and maps the new header.
        // The old header's views are detached (or get zero pages) by the caller: unguarded.
        self.header_map.unguard();
        self.header_map = Arc::new(map);
        let old_file = std::mem::replace(&mut self._header_file, Arc::new(file));
        let old_held = std::mem::replace(&mut self._held, held);
        if old_held.is_some() {
            let _ = old_file.unlock();
        }
        drop(old_held);
        if self.temp {
            return Ok(None);
        }
        Ok(sys::sync_dir(&self.path).err().map(|e| {
            Error::io(
                &e,
                &self.path,
                "making the schema change durable (it is made, but may not survive a power cut; flush again)",
            )
        }))
    }
}

impl MmapVec {
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
}

impl MmapVec {
    fn stop_prefaults(&mut self) {
        for p in self.prefaults.drain(..) {
            p.stop();
        }
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
        if self._held.is_some() {
            let _ = self._header_file.unlock();
        }
    }
}

#[derive(Debug)]
struct SyncPart {
    region: Arc<Reservation>,
    len: usize,
    /// The file to sync as well (its size changed, or syncing the mapping is not enough).
    file: Option<Arc<File>>,
    /// The column's file, to tell whether it is still the one at `path`, and its size.
    handle: Arc<File>,
    file_len: u64,
    path: PathBuf,
}

/// See [`MmapVec::sync_job`].
#[derive(Debug, Default)]
pub struct SyncJob {
    vec: PathBuf,
    columns: Vec<SyncPart>,
    header: Option<(Arc<FileMap>, PathBuf)>,
    /// The header file, where syncing a mapping does not reach the disk by itself.
    header_file: Option<Arc<File>>,
    /// The header file, to tell whether it is still the one at its path.
    header_handle: Option<Arc<File>>,
    /// Tells the vec that a job is alive (see [`MmapVec::unmap_columns`]).
    _busy: Option<Arc<()>>,
    /// The vec's count of its own rewrites, and its value when the job was made.
    rewrites: Option<(Arc<AtomicU64>, u64)>,
}

impl SyncJob {
    /// Syncs the columns, then the header. A vec damaged under its mappings (see
    /// [`MmapVec::intact`]) is not synced: its header would make rows that were lost durable.
    pub fn run(&self) -> Result<()> {
        self.intact()?;
        self.still_in_place()?;
        for p in &self.columns {
            p.region
                .sync(p.len)
                .map_err(|e| Error::io(&e, &p.path, "flushing"))?;
            if let Some(f) = &p.file {
                f.sync_data().map_err(|e| Error::io(&e, &p.path, "flushing"))?;
            }
        }
        // A column may have faulted while it was synced.
        self.intact()?;
        if let Some((h, path)) = &self.header {
            h.sync().map_err(|e| Error::io(&e, path, "flushing"))?;
            if let Some(f) = &self.header_file {
                f.sync_data().map_err(|e| Error::io(&e, path, "flushing"))?;
            }
        }
        Ok(())
    }
}

impl SyncJob {
    /// Fails with EIO when another program replaced or deleted one of the vec's files under it
    /// (a rename over it, an rm): the mapping still holds the old file, which nothing can reach
    /// any more, so syncing it would report as durable rows that are lost at close.
    fn still_in_place(&self) -> Result<()> {
        let found = self.files_in_place();
        // The vec shrank, dropped a column or replaced its header since the job was made (read
        // after the files): they differ from what the job saw by its own doing.
        let rewritten = self
            .rewrites
            .as_ref()
            .is_some_and(|(n, at)| n.load(Ordering::Acquire) != *at);
        if rewritten {
            Ok(())
        } else {
            found
        }
    }

    fn files_in_place(&self) -> Result<()> {
        let header = self
            .header_handle
            .iter()
            .zip(self.header.iter())
            .map(|(f, (map, path))| (f, path, map.len() as u64));
        let files = self
            .columns
            .iter()
            .map(|p| (&p.handle, &p.path, p.file_len))
            .chain(header);
        for (file, path, expected) in files {
            // Cut short, but no page past the cut touched yet (nothing faulted): syncing would
            // make the lost rows' count durable.
            if file.metadata().is_ok_and(|m| m.len() < expected) {
                return Err(Error::damaged(&self.vec, path));
            }
            let same = match (sys::file_id(file), sys::path_id(path)) {
                (Ok(a), Ok(b)) => a == b,
                (Ok(_), Err(e)) if e.kind() == io::ErrorKind::NotFound => false,
                _ => true,
            };
            if !same {
                return Err(Error::new(
                    Code::Io,
                    format!(
                        "{}: {} was replaced or deleted by another program while the vec was open; what was written since went to the old file, which nothing can reach any more, so nothing was made durable. Close the vec and restore it from a backup",
                        self.vec.display(),
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn intact(&self) -> Result<()> {
        if let Some((_, path)) = self.header.as_ref().filter(|(h, _)| h.faulted()) {
            return Err(Error::damaged(&self.vec, path));
        }
        match self.columns.iter().find(|p| p.region.faulted()) {
            Some(p) => Err(Error::damaged(&self.vec, &p.path)),
            None => Ok(()),
        }
    }
}
