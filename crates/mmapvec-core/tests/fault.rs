//! The SIGBUS guard: a file cut short under an open vec reads zeros and fails the vec's next
//! call with EIO; a SIGBUS anywhere else still reaches whatever handled it before. The cases
//! that end the process run in a child: this test binary again, told by an environment
//! variable which case to play.
#![cfg(unix)]

mod common;

use std::fs;
use std::process::Command;

use common::{fill, index, opts, particles};
use mmapvec_core::{Code, MmapVec};

const CHILD: &str = "MMAPVEC_FAULT_CHILD";

/// Reads every byte of column `name` the way JavaScript would, through its mapping.
fn sum_column(v: &MmapVec, name: &str) -> u64 {
    let (region, offset, len) = v.column_region(index(v, name));
    let base = region.base().wrapping_add(offset);
    // SAFETY: the column's `len` bytes from `base` are mapped while the vec is open.
    (0..len)
        .map(|i| unsafe { std::ptr::read_volatile(base.add(i)) } as u64)
        .sum()
}

#[test]
fn a_column_cut_short_reads_zeros_and_the_vec_then_fails_with_eio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 5000);
    v.flush().unwrap();
    assert!(sum_column(&v, "id") > 0);
    let file = path.join(&v.schema().columns[index(&v, "id")].file);
    let before = fs::read(&file).unwrap();
    // Another program cuts the file short: reading its pages now would raise SIGBUS.
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_eq!(sum_column(&v, "id"), 0, "the pages past the cut read as zeros");
    let err = v.flush().unwrap_err();
    assert_eq!(err.code, Code::Io);
    assert!(
        err.message.contains("cut short") && err.message.contains(&*file.to_string_lossy()),
        "{}",
        err.message
    );
    assert_eq!(v.grow(100_000, true).unwrap_err().code, Code::Io);
    assert_eq!(v.write_rows(0, 0, &[0u8; 12]).unwrap_err().code, Code::Io);
    // The other column was not touched, and the vec wrote nothing into the cut file.
    assert!(sum_column(&v, "pos") > 0);
    drop(v);
    assert_eq!(fs::metadata(&file).unwrap().len(), 0);
    assert!(!before.is_empty());
}

#[test]
fn a_header_cut_short_fails_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 10);
    fs::File::options()
        .write(true)
        .open(path.join("header"))
        .unwrap()
        .set_len(0)
        .unwrap();
    // The row count lives in the header's first page: storing it faults, and lands in a zero
    // page (set_len, like JavaScript's stores, checks nothing on the hot path).
    v.set_len(5).unwrap();
    let (map, off) = v.header_region();
    map.write_f64(off, 3.0);
    let err = v.flush().unwrap_err();
    assert_eq!(err.code, Code::Io);
    assert!(err.message.contains("header"), "{}", err.message);
    assert!(v.intact().is_err());
    assert_eq!(v.grow(100_000, true).unwrap_err().code, Code::Io);
}

#[test]
fn a_replaced_or_deleted_file_fails_the_flush() {
    for replace in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
        fill(&mut v, 100);
        v.flush().unwrap();
        let file = path.join(&v.schema().columns[0].file);
        if replace {
            let other = dir.path().join("other");
            fs::write(&other, vec![0u8; 4096]).unwrap();
            fs::rename(&other, &file).unwrap();
        } else {
            fs::remove_file(&file).unwrap();
        }
        let err = v.flush().unwrap_err();
        assert_eq!(err.code, Code::Io, "{}", err.message);
        assert!(err.message.contains("replaced or deleted"), "{}", err.message);
    }
}

/// What a child plays (see [`CHILD`]).
extern "C" fn earlier_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) }
}

fn child_case(case: &str) {
    if case == "chained" {
        // A handler the program installed before any vec was opened.
        // SAFETY: a zeroed sigaction with an SA_SIGINFO handler of the right signature.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = earlier_handler as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    }
    // Opening a vec installs the guard.
    let dir = tempfile::tempdir().unwrap();
    let v = MmapVec::open(&dir.path().join("v"), &particles(), &opts()).unwrap();
    match case {
        "foreign-fault" | "chained" => {
            // A file mapped by someone else, cut short: not the vec's, so the default action
            // (death by SIGBUS) must happen as if the guard were not there.
            let f = dir.path().join("foreign");
            fs::write(&f, vec![1u8; 8192]).unwrap();
            let file = fs::File::options().read(true).write(true).open(&f).unwrap();
            // SAFETY: a fresh mapping of a file nobody else maps; it is meant to fault.
            let map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
            file.set_len(0).unwrap();
            // SAFETY: in bounds of the mapping; the page is past the file's new end.
            let b = unsafe { std::ptr::read_volatile(map.as_ptr().add(4096)) };
            println!("survived {b}");
        }
        _ => unreachable!(),
    }
    drop(v);
}

fn run_child(case: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, case)
        .output()
        .unwrap()
}

#[test]
fn child_entry() {
    if let Ok(case) = std::env::var(CHILD) {
        child_case(&case);
    }
}

#[test]
fn a_sigbus_outside_the_vecs_mappings_reaches_the_handler_installed_before() {
    let out = run_child("chained");
    assert_eq!(
        out.status.code(),
        Some(42),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_sigbus_outside_the_vecs_mappings_still_kills_the_process() {
    use std::os::unix::process::ExitStatusExt;
    // (A SIGBUS sent with kill() is checked from Node, whose previous action is the default:
    // here the previous one is Rust's own stack-overflow handler, which ignores sent signals.)
    {
        let case = "foreign-fault";
        let out = run_child(case);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGBUS),
            "{case}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    }
}
