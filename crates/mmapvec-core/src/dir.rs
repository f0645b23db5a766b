//! The vec directory on disk: a header file and one file per column (docs/FORMAT.md). Creating
//! and removing it atomically (by renaming a work directory), opening and locking its header,
//! opening its column files, and clearing what a crash left behind. Nothing here maps memory.
//! One concern (the directory's life on disk), a little past 500 lines.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{format_err, Code, Error, Result};
use crate::header::{self, Header, HEADER_FILE};
use crate::lock::{self, Held};
use crate::schema::{Column, Schema};
use crate::sys;

/// A schema change writes the new header as `.header-<unique>.tmp` and renames it over `header`.
const HEADER_TMP_PREFIX: &str = ".header-";
const HEADER_TMP_SUFFIX: &str = ".tmp";

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name part no other process, nor another call of this one, uses: the process id, the time
/// and a counter.
pub(crate) fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where a new header is written before it is renamed over the live one.
pub(crate) fn header_tmp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        "{HEADER_TMP_PREFIX}{}{HEADER_TMP_SUFFIX}",
        unique_suffix()
    ))
}

/// Whether a vec's directory is at `path`: false when nothing is there, EFORMAT when something
/// that is not a directory is.
pub(crate) fn check_vec_dir(path: &Path) -> Result<bool> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(format_err(
            path,
            "is not an mmapvec vec: a vec is a directory holding a header file and one file per column",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(&e, path, "looking it up")),
    }
}

/// Bytes a column file needs for `rows` rows starting at `offset`, rounded up to whole units
/// of [`sys::map_granularity`] (pages), so that growth maps whole units of the file.
pub(crate) fn file_bytes(rows: u64, row_size: usize, offset: u32) -> Result<u64> {
    let page = sys::map_granularity() as u64;
    rows.checked_mul(row_size as u64)
        .and_then(|b| b.checked_add(offset as u64 + page - 1))
        .map(|b| b / page * page)
        .filter(|&b| b <= isize::MAX as u64)
        .ok_or_else(|| {
            Error::new(
                Code::Invalid,
                format!("a capacity of {rows} rows does not fit the address space"),
            )
        })
}

/// Rows a column file of `len` bytes holds.
pub(crate) fn rows_in(len: u64, offset: u32, row_size: usize) -> u64 {
    len.saturating_sub(offset as u64) / row_size as u64
}

/// The start of the name of a directory that creates or removes the vec `name` beside it:
/// `.name.creating-` (then a unique suffix). A file name has at most 255 bytes, and a vec's
/// name may use all of them: a long one is cut to 160 bytes and a hash of the whole is added,
/// so the work directory's name fits and still belongs to this vec alone.
pub(crate) fn work_prefix(name: &str, what: &str) -> String {
    const KEEP: usize = 160;
    if name.len() <= KEEP {
        return format!(".{name}.{what}-");
    }
    let mut cut = KEEP;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        ".{}~{:08x}.{what}-",
        &name[..cut],
        crc32fast::hash(name.as_bytes())
    )
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The highest of `dir` and its ancestors that does not exist yet: what `create_dir_all(dir)`
/// will make.
fn first_missing(dir: &Path) -> Option<PathBuf> {
    let mut missing = None;
    for a in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        if a.symlink_metadata().is_ok() {
            break;
        }
        missing = Some(a.to_path_buf());
    }
    missing
}

/// Removes the directories from `dir` up to `top` that a failed creation made (`top` is
/// [`first_missing`]'s answer before it), as long as they are empty.
fn remove_made_parents(dir: &Path, top: Option<&Path>) {
    let Some(top) = top else { return };
    for a in dir.ancestors() {
        if fs::remove_dir(a).is_err() || a == top {
            break;
        }
    }
}

/// Removes the vec at `path` that this process just created with [`create_dir_vec`] (whose
/// answer `made` is) and could not open, with the parent directories it made: a failed call
/// leaves nothing behind. Refused (and nothing removed) if another process opened it meanwhile.
pub(crate) fn remove_created(path: &Path, made: Option<&Path>) {
    if remove(path).is_ok() {
        remove_made_parents(&parent_of(path), made);
    }
}

/// Creates a vec directory atomically: built beside `path` under a temporary name, with a
/// header for `schema` and the application's `version` and column files with room for
/// `capacity` rows, made durable, then renamed into place. Fails with EEXIST when `path`
/// appeared meanwhile. Returns the highest parent directory it had to make, if any (a failed
/// creation removes them again).
pub(crate) fn create_dir_vec(
    path: &Path,
    schema: &Schema,
    version: u64,
    capacity: u64,
) -> Result<Option<PathBuf>> {
    let parent = parent_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| {
            Error::new(
                Code::Invalid,
                format!("{}: not a usable path for a vec", path.display()),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let made = first_missing(&parent);
    fs::create_dir_all(&parent).map_err(|e| Error::io(&e, &parent, "creating the parent directory"))?;
    let built = build_dir_vec(path, &parent, &name, schema, version, capacity);
    if built.is_err() {
        remove_made_parents(&parent, made.as_deref());
    }
    built.map(|()| made)
}

fn build_dir_vec(
    path: &Path,
    parent: &Path,
    name: &str,
    schema: &Schema,
    version: u64,
    capacity: u64,
) -> Result<()> {
    remove_stale_work_dirs(parent, name);
    let tmp = parent.join(format!("{}{}", work_prefix(name, "creating"), unique_suffix()));
    fs::create_dir(&tmp).map_err(|e| Error::io(&e, &tmp, "creating the vec"))?;
    let mut stored = schema.clone();
    stored.assign_files();
    let built = write_vec_files(&tmp, &stored, version, capacity)
        .and_then(|()| sys::sync_dir(&tmp).map_err(|e| Error::io(&e, &tmp, "creating the vec")));
    if let Err(e) = built {
        remove_vec_dir(&tmp, &stored);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        remove_vec_dir(&tmp, &stored);
        if path.exists() {
            return Err(Error::new(
                Code::Exists,
                format!("{}: already exists", path.display()),
            ));
        }
        return Err(Error::io(&e, path, "creating the vec"));
    }
    let _ = sys::sync_dir(parent);
    Ok(())
}

/// How old a creation or removal directory of a dead process must be before it is removed: a
/// process in another PID namespace (a container sharing the volume) looks dead from here, and
/// no creation takes this long.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Removes what a process killed while creating or removing the vec `name` left beside it
/// (`.name.creating-<pid>-...`, `.name.removing-<pid>-...`): only when that process is gone and
/// the directory is older than [`STALE_AFTER`]. Best effort: errors leave it in place.
fn remove_stale_work_dirs(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| {
            n.strip_prefix(&work_prefix(name, "creating"))
                .or_else(|| n.strip_prefix(&work_prefix(name, "removing")))
        }) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if pid != std::process::id() && old_enough && !sys::process_alive(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes a new header and empty column files (with room for `capacity` rows) into `dir`.
/// Removes a vec directory this process made (a creation's work directory, a temp vec's) with
/// the files [`write_vec_files`] puts there, by name: unlinking needs no descriptor, where
/// `remove_dir_all` must open the directory and so fails when the descriptor table is full,
/// the likely reason the creation failed. Best effort.
pub(crate) fn remove_vec_dir(dir: &Path, schema: &Schema) {
    let _ = fs::remove_file(dir.join(HEADER_FILE));
    let _ = fs::remove_file(dir.join(crate::live::LIVE_FILE));
    for c in &schema.columns {
        let _ = fs::remove_file(dir.join(&c.file));
    }
    if fs::remove_dir(dir).is_err() {
        let _ = fs::remove_dir_all(dir);
    }
}

pub(crate) fn write_vec_files(dir: &Path, schema: &Schema, version: u64, capacity: u64) -> Result<()> {
    use std::io::Write;
    let bytes = Header::encode(schema, version)?;
    let hp = dir.join(HEADER_FILE);
    let mut hf = sys::open_file(&hp, true, true).map_err(|e| Error::io(&e, &hp, "creating the header"))?;
    hf.write_all(&bytes)
        .and_then(|()| hf.sync_all())
        .map_err(|e| Error::io(&e, &hp, "writing the header"))?;
    for c in &schema.columns {
        create_column_file(dir, c, capacity)?;
    }
    Ok(())
}

/// Creates column `col`'s file in `dir`, sized for `capacity` rows with reserved (not written)
/// blocks, so that every row reads zero, and makes it durable. Returns the file and its size;
/// on a failure the file is removed again.
pub(crate) fn create_column_file(dir: &Path, col: &Column, capacity: u64) -> Result<(File, u64)> {
    let cp = dir.join(&col.file);
    let file = sys::open_file(&cp, true, true).map_err(|e| Error::io(&e, &cp, "creating a column file"))?;
    let sized = (|| {
        let size = file_bytes(capacity, col.row_size(), col.offset)?;
        if size > 0 {
            sys::allocate(&file, size).map_err(|e| Error::io(&e, &cp, "allocating a column file"))?;
        }
        file.sync_all()
            .map_err(|e| Error::io(&e, &cp, "creating a column file"))?;
        Ok(size)
    })();
    match sized {
        Ok(size) => Ok((file, size)),
        Err(e) => {
            let _ = fs::remove_file(&cp);
            Err(e)
        }
    }
}

/// Opens one of a vec's files, which must be a regular file: `missing` and `not_regular` say
/// what it means when it is absent or something else (EFORMAT either way).
fn open_regular(
    path: &Path,
    write: bool,
    missing: Error,
    not_regular: Error,
    doing: &str,
) -> Result<(File, u64)> {
    let file = sys::open_file(path, write, false).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            missing.clone()
        } else if sys::is_not_regular(&e, path) {
            not_regular.clone()
        } else {
            Error::io(&e, path, doing)
        }
    })?;
    let meta = file.metadata().map_err(|e| Error::io(&e, path, doing))?;
    if !meta.is_file() {
        return Err(not_regular);
    }
    Ok((file, meta.len()))
}

/// Opens (read-write or read-only) the header file of the vec at `path`, on an open file
/// description of its own, without locking it.
pub(crate) fn open_header_file(path: &Path, write: bool) -> Result<File> {
    let hp = path.join(HEADER_FILE);
    open_regular(
        &hp,
        write,
        format_err(
            path,
            "is a directory without a header file: not an mmapvec vec, or its header was deleted",
        ),
        format_err(&hp, "is not a regular file; a vec's header is a file"),
        "opening the header",
    )
    .map(|(f, _)| f)
}

/// Opens (read-write or read-only) and locks a vec's header file.
pub(crate) fn open_header(path: &Path, write: bool, timeout: Duration) -> Result<(File, Held)> {
    let hp = path.join(HEADER_FILE);
    let start = Instant::now();
    for _ in 0..1000 {
        let file = open_header_file(path, write)?;
        let held = lock::lock_since(&file, write, timeout, start, path)?;
        // A schema change renames a new header file over this one (its writer locks the new file
        // before the rename). A lock on a file that was replaced while this process waited for it
        // keeps nobody out: take the live file's lock instead.
        let live = sys::path_id(&hp).ok();
        if live.is_some() && live == sys::file_id(&file).ok() {
            return Ok((file, held));
        }
        let _ = sys::unlock(&file);
    }
    Err(Error::new(
        Code::Io,
        format!(
            "{}: the header file was replaced a thousand times while this process tried to lock it; is another process changing the schema in a loop?",
            hp.display()
        ),
    ))
}

/// Reads and checks the header of the vec at `path` through its file (never through a
/// mapping, which would fault on a truncated file), and returns it with the stored row count.
pub(crate) fn read_header(path: &Path, file: &File) -> Result<(Header, u64)> {
    let hp = path.join(HEADER_FILE);
    let (bytes, size) = header::read_bytes(file, &hp)?;
    let what = hp.display().to_string();
    let header = Header::decode(&bytes, size, &what)?;
    let length = header::decode_length(header::stored_length(&bytes), &what)?;
    Ok((header, length))
}

/// Opens (read-write or read-only) the file of column `c` in the vec directory `dir`, and
/// gives its size.
pub(crate) fn open_column_file(dir: &Path, c: &Column, write: bool) -> Result<(File, u64)> {
    let cp = dir.join(&c.file);
    open_regular(
        &cp,
        write,
        format_err(
            dir,
            format!(
                "damaged: the column file {} of field '{}' is missing",
                c.file, c.name
            ),
        ),
        format_err(&cp, format!("is not a regular file (field '{}')", c.name)),
        "opening a column file",
    )
}

/// Opens every column file of `schema` in `dir`: each file, its path and its size.
pub(crate) fn open_column_files(
    dir: &Path,
    schema: &Schema,
    write: bool,
) -> Result<Vec<(File, PathBuf, u64)>> {
    schema
        .columns
        .iter()
        .map(|c| open_column_file(dir, c, write).map(|(f, len)| (f, dir.join(&c.file), len)))
        .collect()
}

/// The number `N` of a column file name `cN.col`.
pub(crate) fn column_file_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('c')?.strip_suffix(".col")?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes what a schema change interrupted by a crash left in the directory of a vec this
/// process holds the write lock on: regular column files (`cN.col`) the header does not name,
/// and unfinished header files (`.header-*.tmp`). Nothing reads them; best effort.
pub(crate) fn remove_orphans(path: &Path, schema: &Schema) {
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let orphan = (column_file_number(name).is_some() && !schema.columns.iter().any(|c| c.file == name))
            || (name.starts_with(HEADER_TMP_PREFIX) && name.ends_with(HEADER_TMP_SUFFIX));
        if orphan && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Deletes the vec at `path`; fails with ELOCKED while any handle has it open.
pub(crate) fn remove(path: &Path) -> Result<()> {
    // Renaming a symlink would remove the link and leave the vec: refused instead.
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = fs::canonicalize(path).map_or_else(|_| "its target".into(), |t| t.display().to_string());
        return Err(Error::new(
            Code::Invalid,
            format!(
                "{}: is a symbolic link; remove the vec by its own path ({target}), then the link",
                path.display()
            ),
        ));
    }
    if !check_vec_dir(path)? {
        return Err(Error::new(
            Code::NotFound,
            format!("{}: no such vec to remove", path.display()),
        ));
    }
    if path.file_name().is_none() {
        return Err(Error::new(
            Code::Invalid,
            format!(
                "{}: a vec cannot be removed through '.', '..' or a root; name it by a path that ends in its own name",
                path.display()
            ),
        ));
    }
    let (file, _held) = open_header(path, false, Duration::ZERO)?;
    read_header(path, &file)?;
    if crate::live::readers_present(path).unwrap_or(false) {
        return Err(Error::new(
            Code::Locked,
            format!(
                "{}: locked: readers have it open (readOnly handles, in this process or another); close them first",
                path.display()
            ),
        ));
    }
    let parent = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Deleting the files needs write access to the vec's directory, renaming it only to
    // the parent's: a remove that could rename but not delete would leave the vec hidden
    // under a name no open finds. Checked before anything changes.
    if let Err(e) = sys::check_dir_writable(path) {
        return Err(Error::io(&e, path, "removing it (its files cannot be deleted)"));
    }
    let doomed = parent.join(format!("{}{}", work_prefix(&name, "removing"), unique_suffix()));
    // Renaming first makes the vec disappear at once, even if deleting is interrupted.
    fs::rename(path, &doomed).map_err(|e| Error::io(&e, path, "removing it"))?;
    if let Err(e) = fs::remove_dir_all(&doomed) {
        // Put back what is left where it was, so that it is not mistaken for a missing vec
        // (an open would otherwise create a new, empty one).
        let back = fs::rename(&doomed, path);
        let mut err = Error::io(&e, path, "deleting its files");
        err.message = match back {
            Ok(()) => format!(
                "{}; it was left in place (files deleted before the failure stay deleted, so check it with `mmapvec verify`)",
                err.message
            ),
            Err(b) => format!(
                "{}; what is left of it could not be put back ({b}) and is at {}",
                err.message,
                doomed.display()
            ),
        };
        return Err(err);
    }
    let _ = sys::sync_dir(&parent);
    Ok(())
}

/// Makes a new, empty directory in the system's temp directory, for files a temp vec opens and
/// then unlinks at once; the caller removes it.
pub(crate) fn create_scratch_dir(doing: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("mmapvec-{}", unique_suffix()));
    fs::create_dir(&dir).map_err(|e| Error::io(&e, &dir, doing))?;
    Ok(dir)
}
