//! Errors with a stable code, as JavaScript sees them in `err.code`.

use std::fmt;
use std::io;
use std::path::Path;

/// The stable error codes. Each one names what went wrong so a program can react to it
/// without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The lock is held by another process or another open handle in this process.
    Locked,
    /// The vec exists and `create` was asked for.
    Exists,
    /// The vec does not exist and creating it was not allowed.
    NotFound,
    /// Not a vec, or damaged.
    Format,
    /// The stored schema differs from the requested one.
    Schema,
    /// The stored application version differs from the requested one.
    Version,
    /// Written on another byte order.
    Arch,
    /// The vec was closed.
    Closed,
    /// A write to a vec opened read-only.
    ReadOnly,
    /// An index out of bounds.
    Range,
    /// The disk (or a file size limit) is full.
    NoSpace,
    /// A bad schema, argument or option.
    Invalid,
    /// The operating system denied access.
    Access,
    /// Any other I/O failure.
    Io,
}

impl Code {
    /// The string JavaScript sees as `err.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Locked => "ELOCKED",
            Code::Exists => "EEXIST",
            Code::NotFound => "ENOENT",
            Code::Format => "EFORMAT",
            Code::Schema => "ESCHEMA",
            Code::Version => "EVERSION",
            Code::Arch => "EARCH",
            Code::Closed => "ECLOSED",
            Code::ReadOnly => "EREADONLY",
            Code::Range => "ERANGE",
            Code::NoSpace => "ENOSPC",
            Code::Invalid => "EINVAL",
            Code::Access => "EACCES",
            Code::Io => "EIO",
        }
    }
}

/// What limits a file's size, and how to lift it, for the message of a growth past it.
#[cfg(unix)]
const FILE_SIZE_LIMIT: &str = "RLIMIT_FSIZE, `ulimit -f`";
#[cfg(unix)]
const RAISE_LIMIT: &str = "Raise the limit and try again";
#[cfg(not(unix))]
const FILE_SIZE_LIMIT: &str = "the largest file the file system holds";
#[cfg(not(unix))]
const RAISE_LIMIT: &str = "Split the data, or move it to a file system that holds larger files";

/// An error with a stable [`Code`] and a message that names the path and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// The process ran out of something (file descriptors, memory), which says nothing about
    /// the files: a check that meets it must fail rather than report the vec damaged.
    pub exhausted: bool,
}

/// What to do when the process has no file descriptors left.
const TOO_MANY_FILES: &str = "raise the limit on open files (`ulimit -n`, or LimitNOFILE for a service), or close other files, and try again; nothing was changed by this call";

/// Whether `err` is the process's or the system's lack of a resource: file descriptors
/// (EMFILE, ENFILE) or memory (ENOMEM).
fn exhausted(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    #[cfg(unix)]
    let codes = [libc::EMFILE, libc::ENFILE, libc::ENOMEM];
    // ERROR_TOO_MANY_OPEN_FILES, ERROR_NOT_ENOUGH_MEMORY, ERROR_OUTOFMEMORY.
    #[cfg(windows)]
    let codes = [4, 8, 14];
    err.raw_os_error().is_some_and(|c| codes.contains(&c))
}

/// Whether `err` is the lack of file descriptors, whose fix the message names.
fn too_many_files(err: &io::Error) -> bool {
    #[cfg(unix)]
    let codes = [libc::EMFILE, libc::ENFILE];
    #[cfg(windows)]
    let codes = [4];
    err.raw_os_error().is_some_and(|c| codes.contains(&c))
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            exhausted: false,
        }
    }

    /// A vec one of whose files faulted under its mapping, or was cut short, replaced or
    /// deleted under it by another program (see `MmapVec::intact`).
    pub fn damaged(path: &Path, file: &Path) -> Self {
        Error::new(
            Code::Io,
            format!(
                "{}: damaged while open: {} was cut short by another program (or a write into it found no disk space), so its pages past the cut read as zeros and writes there are lost; close the vec, then check it with `mmapvec verify {}` and restore it from a backup",
                path.display(),
                file.display(),
                path.display()
            ),
        )
    }

    /// Maps an I/O failure on `path` while `doing` something to the closest stable code.
    pub fn io(err: &io::Error, path: &Path, doing: &str) -> Self {
        let p = path.display();
        // std maps the OS's codes to these kinds on every platform (ENOSPC and ERROR_DISK_FULL
        // are both StorageFull, EROFS and ERROR_WRITE_PROTECT both ReadOnlyFilesystem, ...).
        match err.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Error::new(
                Code::NoSpace,
                format!(
                    "{p}: no space left on the device while {doing}; nothing was lost and the vec keeps its old capacity. Free some disk space and try again"
                ),
            ),
            io::ErrorKind::FileTooLarge => Error::new(
                Code::NoSpace,
                format!(
                    "{p}: the file size limit ({FILE_SIZE_LIMIT}) was reached while {doing}; nothing was lost and the vec keeps its old capacity. {RAISE_LIMIT}"
                ),
            ),
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Error::new(
                Code::Access,
                format!("{p}: permission denied while {doing} ({err}); check the file's owner and mode, or open it with readOnly"),
            ),
            io::ErrorKind::InvalidFilename => Error::new(
                Code::Invalid,
                format!(
                    "{p}: a name in the path is longer than 255 bytes, or the whole path longer than the system allows, while {doing}; use a shorter path"
                ),
            ),
            io::ErrorKind::NotADirectory => Error::new(
                Code::Invalid,
                format!("{p}: a part of the path is a file, not a directory, while {doing}; give a path whose parents are directories"),
            ),
            io::ErrorKind::NotFound => Error::new(
                Code::NotFound,
                format!("{p}: no such file or directory while {doing}"),
            ),
            _ if too_many_files(err) => Error {
                exhausted: true,
                ..Error::new(Code::Io, format!("{p}: {err} while {doing}: this process has too many files open; {TOO_MANY_FILES}"))
            },
            _ => Error {
                exhausted: exhausted(err),
                ..Error::new(Code::Io, format!("{p}: {err} while {doing}"))
            },
        }
    }
}

/// An EFORMAT error: what is at `path` is not (or no longer) what a vec's file must be.
pub(crate) fn format_err(path: &Path, msg: impl fmt::Display) -> Error {
    Error::new(Code::Format, format!("{}: {msg}", path.display()))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
