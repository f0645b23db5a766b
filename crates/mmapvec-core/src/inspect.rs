//! Looking at a vec without opening it: what `mmapvec info` and `mmapvec verify` show.
//!
//! Nothing here takes the vec's lock (beyond [`lock::probe`], released at once), maps a file or
//! opens one for writing, so both work while another process has the vec open read-write, and
//! neither ever changes a file. `verify` runs its checks again when the vec changed under them
//! (see [`crate::settle`]).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::dir::{self, open_column_file, open_header_file, rows_in};
use crate::error::{format_err, Code, Error, Result};
use crate::header::{self, Header, HEADER_ALIGN, HEADER_FILE};
use crate::lock::{self, LockState};
use crate::schema::{ElemType, Schema};
use crate::settle;

/// One column as the header describes it, and its file as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: ElemType,
    pub count: u32,
    pub file: String,
    pub offset: u32,
    /// The column file's size; `None` when it is missing or not a regular file.
    pub bytes: Option<u64>,
    /// Rows the file has room for; `None` as for `bytes`.
    pub rows: Option<u64>,
}

impl ColumnInfo {
    /// The element type as schemas spell it (`f32`, `bool`...).
    pub fn type_name(&self) -> String {
        serde_json::to_value(self.ty)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub path: PathBuf,
    pub format_version: u32,
    /// The vec's byte order, which is this machine's (a vec of the other one is EARCH).
    pub little_endian: bool,
    /// The architecture that created the vec (informational).
    pub arch: String,
    pub app_version: u64,
    pub header_bytes: u64,
    pub length: u64,
    /// The fewest rows any column file has room for; `None` when a column file is missing.
    pub capacity: Option<u64>,
    pub schema: Schema,
    pub columns: Vec<ColumnInfo>,
    /// The writer's lock: `Exclusive` while a writer has the vec open; else `Shared` while
    /// readers have it open (readers never take the writer's lock; see `readers`).
    pub lock: LockState,
    /// True when an open handle of this process holds the lock.
    pub lock_held_here: bool,
    /// Whether readers (`readOnly` handles) have it open, beside the writer or not.
    pub readers: bool,
}

/// A problem [`verify`] found: the error opening the vec would give (`code`), the check that
/// found it (a stable name), and a message naming the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub check: &'static str,
    pub message: String,
    /// The check failed for want of a resource of the process (`Error::exhausted`): no
    /// problem of the vec, and `verify` fails instead of reporting it.
    pub(crate) exhausted: bool,
}

impl Problem {
    pub(crate) fn new(check: &'static str, e: Error) -> Problem {
        Problem {
            code: e.code,
            check,
            exhausted: e.exhausted,
            message: e.message,
        }
    }

    /// The error of the check itself, for a problem that is the process's (see `exhausted`).
    fn into_error(self) -> Error {
        Error {
            exhausted: true,
            ..Error::new(self.code, self.message)
        }
    }
}

fn not_found(path: &Path) -> Error {
    Error::new(Code::NotFound, format!("{}: no such vec", path.display()))
}

/// Fails with ENOENT when nothing is at `path`, EFORMAT when it is not a directory.
fn check_dir(path: &Path) -> Result<()> {
    if dir::check_vec_dir(path)? {
        Ok(())
    } else {
        Err(not_found(path))
    }
}

/// Reads what the header of the vec at `path` says, the sizes of its column files and who
/// holds its lock, without locking or changing anything. Fails as opening would when the
/// header is missing or damaged (ENOENT, EFORMAT, EARCH); a missing column file shows as
/// `bytes: None` (run [`verify`] for every problem).
pub fn inspect(path: &Path) -> Result<Info> {
    check_dir(path)?;
    let file = open_header_file(path, false)?;
    let (h, length) = dir::read_header(path, &file)?;
    let hp = path.join(HEADER_FILE);
    let lock = lock::probe(&file).map_err(|e| Error::io(&e, &hp, "probing the lock"))?;
    let live = path.join(crate::live::LIVE_FILE);
    let readers =
        crate::live::readers_present(path).map_err(|e| Error::io(&e, &live, "probing the readers' lock"))?;
    let lock = match lock {
        LockState::Unlocked if readers => LockState::Shared,
        l => l,
    };
    let held_here = lock::held_in_this_process(&file)
        || std::fs::File::open(&live).is_ok_and(|f| lock::held_in_this_process(&f));
    let columns: Vec<ColumnInfo> = h
        .schema
        .columns
        .iter()
        .map(|c| {
            let bytes = fs::metadata(path.join(&c.file))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            ColumnInfo {
                name: c.name.clone(),
                ty: c.ty,
                count: c.count,
                file: c.file.clone(),
                offset: c.offset,
                bytes,
                rows: bytes.map(|b| rows_in(b, c.offset, c.row_size())),
            }
        })
        .collect();
    let capacity = columns
        .iter()
        .map(|c| c.rows)
        .collect::<Option<Vec<u64>>>()
        .map(|rows| rows.into_iter().min().unwrap_or(0));
    Ok(Info {
        path: path.to_path_buf(),
        format_version: header::FORMAT_VERSION,
        little_endian: cfg!(target_endian = "little"),
        arch: h.arch,
        app_version: h.app_version,
        header_bytes: h.header_size as u64,
        length,
        capacity,
        schema: h.schema,
        columns,
        lock,
        lock_held_here: held_here,
        readers,
    })
}

/// How much of a column file [`verify`] reads at a time.
const CHUNK: usize = 1 << 20;

/// Runs every check the format allows on the vec at `path` and returns every problem found
/// (none for a sound vec): the header (magic, byte order, format version, size, checksum,
/// reserved field, padding, schema, column file names, row count), each column file (present,
/// a regular file, a whole number of pages, zeros before its rows, room for the row count) and
/// the values of `bool` columns (0 or 1). Reads only; takes no lock. Fails only with ENOENT
/// when nothing is at `path`, and ELOCKED when a writer kept changing the vec (below);
/// whatever else is wrong is a problem in the list.
///
/// A vec another process is writing may change while it is checked (a schema change replaces
/// the header and makes or deletes column files, a shrink cuts them), and what one check sees
/// then can look like damage. So problems count only when the vec did not change while they
/// were found (the header's file and bytes, the directory's entries, their sizes and times);
/// otherwise the check runs again, up to 20 times, after which it fails with
/// ELOCKED: the vec kept changing, run it again when the writer is idle. A vec nobody changes
/// is checked once.
pub fn verify(path: &Path) -> Result<Vec<Problem>> {
    settle::settled(path, verify_once)
}

/// One run of [`verify`]'s checks, whatever changes meanwhile. Within it, the row count is read
/// before and after the column files, and only the smaller one is held against them, so growth
/// and shrinking under way are not reported as damage.
pub(crate) fn verify_once(path: &Path) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    match check_dir(path) {
        Ok(()) => {}
        Err(e) if e.code == Code::NotFound => return Err(e),
        Err(e) => return Ok(vec![Problem::new("directory", e)]),
    }
    let file = match open_header_file(path, false) {
        Ok(f) => f,
        Err(e) if e.exhausted => return Err(e),
        Err(e) => return Ok(vec![Problem::new("header-file", e)]),
    };
    let hp = path.join(HEADER_FILE);
    let what = hp.display().to_string();
    let (bytes, size) = match header::read_bytes(&file, &hp) {
        Ok(b) => b,
        Err(e) if e.exhausted => return Err(e),
        Err(e) => return Ok(vec![Problem::new("header-size", e)]),
    };
    let checked = Header::check(&bytes, size, &what);
    problems.extend(checked.problems.into_iter().map(|(c, e)| Problem::new(c, e)));
    let Some(h) = checked.header else {
        return Ok(problems);
    };
    let length = match header::decode_length(header::stored_length(&bytes), &what) {
        Ok(n) => Some(n),
        Err(e) => {
            problems.push(Problem::new("row-count", e));
            None
        }
    };
    // The sizes of the column files, each opened and closed in turn: a vec may have more
    // columns than the process may have files open.
    let mut found = Vec::with_capacity(h.schema.columns.len());
    for c in &h.schema.columns {
        // A name that is not a plain file name was reported above, and is not followed.
        if !header::valid_file_name(&c.file) || c.count == 0 {
            found.push(None);
            continue;
        }
        let cp = path.join(&c.file);
        match open_column_file(path, c, false) {
            Ok((f, len)) => {
                check_column_file(&mut problems, &f, len, &cp, c.offset, &c.name);
                found.push(Some(len));
            }
            Err(e) if e.exhausted => return Err(e),
            Err(e) => {
                problems.push(Problem::new("column-file", e));
                found.push(None);
            }
        }
    }
    if let Some(p) = problems.iter().position(|p| p.exhausted) {
        return Err(problems.swap_remove(p).into_error());
    }
    // The row count again, after the sizes: see above.
    let again = header::read_bytes(&file, &hp)
        .ok()
        .filter(|(b, _)| b.len() >= header::OFF_SCHEMA)
        .and_then(|(b, _)| header::decode_length(header::stored_length(&b), &what).ok());
    let Some(length) = length.map(|n| again.map_or(n, |m| n.min(m))) else {
        return Ok(problems);
    };
    for (c, len) in h.schema.columns.iter().zip(found) {
        let Some(len) = len else { continue };
        let rows = rows_in(len, c.offset, c.row_size());
        if rows < length {
            problems.push(Problem::new(
                "capacity",
                format_err(
                    path,
                    format!(
                        "damaged: the header says it holds {length} rows, but the column file {} (field '{}') holds only {rows}",
                        c.file, c.name
                    ),
                ),
            ));
        }
        if c.ty == ElemType::Bool {
            let values = rows.min(length) * c.count as u64;
            // Opened again: a file that went meanwhile is a change the settling sees.
            let checked = open_column_file(path, c, false)
                .map_err(|e| Problem::new("column-file", e))
                .and_then(|(mut f, _)| {
                    check_bools(&mut f, c.offset, values, c.count, &c.file, &c.name, path)
                });
            match checked {
                Err(e) if e.exhausted => return Err(e.into_error()),
                Err(e) => problems.push(e),
                Ok(()) => {}
            }
        }
    }
    Ok(problems)
}

/// A column file's size is a whole number of pages, and the bytes before its rows are zero.
fn check_column_file(
    problems: &mut Vec<Problem>,
    mut f: &File,
    len: u64,
    cp: &Path,
    offset: u32,
    name: &str,
) {
    if !len.is_multiple_of(HEADER_ALIGN as u64) {
        problems.push(Problem::new(
            "column-size",
            format_err(
                cp,
                format!(
                    "damaged: the column file of field '{name}' is {len} bytes, not a whole number of {HEADER_ALIGN}-byte pages"
                ),
            ),
        ));
    }
    let mut prefix = Vec::with_capacity(offset as usize);
    let read = f
        .seek(SeekFrom::Start(0))
        .and_then(|_| f.take(offset as u64).read_to_end(&mut prefix));
    match read {
        Ok(_) if prefix.iter().any(|&b| b != 0) => problems.push(Problem::new(
            "column-prefix",
            format_err(
                cp,
                format!("damaged: the {offset} bytes before the rows of field '{name}' are not all zero"),
            ),
        )),
        Ok(_) => {}
        Err(e) => problems.push(Problem::new(
            "column-file",
            Error::io(&e, cp, "reading a column file"),
        )),
    }
}

/// Every value of a `bool` column's first `values` values is 0 or 1.
fn check_bools(
    f: &mut File,
    offset: u32,
    values: u64,
    count: u32,
    file: &str,
    name: &str,
    path: &Path,
) -> std::result::Result<(), Problem> {
    let cp = path.join(file);
    let io_problem = |e: io::Error| Problem::new("column-file", Error::io(&e, &cp, "reading a column file"));
    f.seek(SeekFrom::Start(offset as u64)).map_err(io_problem)?;
    let mut buf = vec![0u8; CHUNK];
    let (mut at, mut bad, mut first) = (0u64, 0u64, None);
    while at < values {
        let n = (values - at).min(CHUNK as u64) as usize;
        f.read_exact(&mut buf[..n]).map_err(io_problem)?;
        for (k, &b) in buf[..n].iter().enumerate() {
            if b > 1 {
                bad += 1;
                first.get_or_insert(at + k as u64);
            }
        }
        at += n as u64;
    }
    match first {
        None => Ok(()),
        Some(v) => Err(Problem::new(
            "bool-value",
            format_err(
                &cp,
                format!(
                    "damaged: field '{name}' (bool) holds {bad} values that are neither 0 nor 1, the first in row {}",
                    v / count as u64
                ),
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vec::{MmapVec, OpenOptions};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmapvec-inspect-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("v.mvec")
    }

    fn make(path: &Path) {
        let s = Schema::parse_request(
            r#"{"scalar":false,"columns":[{"name":"x","type":"f64","count":1},{"name":"ok","type":"bool","count":2}]}"#,
        )
        .unwrap();
        let mut v = MmapVec::open(path, &s, &OpenOptions::default()).unwrap();
        v.grow(10, false).unwrap();
        v.set_len(3).unwrap();
        v.flush().unwrap();
    }

    #[test]
    fn inspects_a_sound_vec_and_its_lock() {
        let p = scratch("sound");
        make(&p);
        let info = inspect(&p).unwrap();
        assert_eq!(info.length, 3);
        assert_eq!(info.columns.len(), 2);
        assert_eq!(info.lock, LockState::Unlocked);
        assert!(info.capacity.unwrap() >= 10);
        assert_eq!(verify(&p).unwrap(), vec![]);
        let opts = OpenOptions {
            read_only: true,
            ..OpenOptions::default()
        };
        let v = MmapVec::open_stored(&p, &opts).unwrap();
        let info = inspect(&p).unwrap();
        assert_eq!((info.lock, info.lock_held_here), (LockState::Shared, true));
        drop(v);
        let v = MmapVec::open_stored(&p, &OpenOptions::default()).unwrap();
        assert_eq!(inspect(&p).unwrap().lock, LockState::Exclusive);
        assert_eq!(verify(&p).unwrap(), vec![]);
        drop(v);
        assert_eq!(inspect(&p).unwrap().lock, LockState::Unlocked);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn reports_every_problem_and_changes_nothing() {
        let p = scratch("damaged");
        make(&p);
        // Header: a flipped version bit (checksum) and non-zero padding.
        let hp = p.join(HEADER_FILE);
        let mut h = fs::read(&hp).unwrap();
        h[header::OFF_APP_VERSION] ^= 1;
        let last = h.len() - 1;
        h[last] = 7;
        fs::write(&hp, &h).unwrap();
        // Column 0 cut short; column 1 has a bool value of 2 and a non-zero prefix byte.
        fs::OpenOptions::new()
            .write(true)
            .open(p.join("c0.col"))
            .unwrap()
            .set_len(16)
            .unwrap();
        let mut c1 = fs::read(p.join("c1.col")).unwrap();
        c1[0] = 1;
        c1[64 + 3] = 2;
        fs::write(p.join("c1.col"), &c1).unwrap();
        let before: Vec<Vec<u8>> = ["header", "c0.col", "c1.col"]
            .iter()
            .map(|f| fs::read(p.join(f)).unwrap())
            .collect();
        let checks: Vec<&str> = verify(&p).unwrap().iter().map(|q| q.check).collect();
        assert_eq!(
            checks,
            [
                "header-checksum",
                "header-padding",
                "column-size",
                "column-prefix",
                "capacity",
                "bool-value"
            ]
        );
        let after: Vec<Vec<u8>> = ["header", "c0.col", "c1.col"]
            .iter()
            .map(|f| fs::read(p.join(f)).unwrap())
            .collect();
        assert!(before == after);
        assert_eq!(inspect(&p).unwrap_err().code, Code::Format);
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_missing_vec_is_enoent_and_needs_a_schema_to_open() {
        let p = scratch("missing");
        assert_eq!(verify(&p).unwrap_err().code, Code::NotFound);
        assert_eq!(inspect(&p).unwrap_err().code, Code::NotFound);
        let e = MmapVec::open_stored(&p, &OpenOptions::default()).unwrap_err();
        assert_eq!(e.code, Code::NotFound);
        assert!(e.message.contains("needs a schema"), "{e}");
        assert!(!p.exists());
        fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }
}
