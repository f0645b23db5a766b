//! Readers beside the writer, through the core's API: what a reader sees before and after it
//! follows (`follow`), growth past its mapping, schema changes, a writer that never closed, and
//! what the writer must not do while readers are open (cut files, be removed).

use mmapvec_core::vec::Followed;
use mmapvec_core::{Code, ElemType, MmapVec, OpenOptions};

mod common;
use common::{check_particles, fill, opts, particles};

fn reader_opts() -> OpenOptions {
    OpenOptions {
        read_only: true,
        ..opts()
    }
}

#[test]
fn a_reader_sees_what_the_writer_published_at_each_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut w, 100);
    let mut r = MmapVec::open(&path, &particles(), &reader_opts()).unwrap();
    check_particles(&r, 100);
    fill(&mut w, 300);
    // Nothing moves under the reader until it follows.
    assert_eq!(r.len(), 100);
    assert!(matches!(r.follow().unwrap(), Followed::Changed { .. }));
    check_particles(&r, 300);
    assert_eq!(r.follow().unwrap(), Followed::Same);
    // Growth far past what the reader mapped (and past its reservation).
    fill(&mut w, 200_000);
    assert!(matches!(r.follow().unwrap(), Followed::Changed { .. }));
    check_particles(&r, 200_000);
    w.set_len(10).unwrap();
    r.follow().unwrap();
    assert_eq!(r.len(), 10);
}

#[test]
fn the_writer_cuts_no_file_while_a_reader_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut w, 50_000);
    let r = MmapVec::open(&path, &particles(), &reader_opts()).unwrap();
    w.set_len(10).unwrap();
    let cap = w.capacity();
    w.shrink_to_fit().unwrap();
    assert_eq!(w.capacity(), cap, "shrink cut files under a reader");
    // The reader still reads every row it was given.
    check_particles(&r, 50_000);
    assert_eq!(MmapVec::remove(&path).unwrap_err().code, Code::Locked);
    drop(r);
    w.shrink_to_fit().unwrap();
    assert!(w.capacity() < cap);
    drop(w);
    MmapVec::remove(&path).unwrap();
}

#[test]
fn a_schema_change_shows_at_the_next_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut w, 10);
    let mut r = MmapVec::open_stored(&path, &reader_opts()).unwrap();
    w.add_column("hp", ElemType::U16, 1).unwrap();
    assert_eq!(r.follow().unwrap(), Followed::Reshaped);
    let r = MmapVec::open_stored(&path, &reader_opts()).unwrap();
    assert_eq!(r.schema().columns.len(), 3);
    assert_eq!(r.len(), 10);
}

#[test]
fn a_reader_takes_the_published_count_while_the_writer_lives_and_the_header_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut w, 10);
    let mut r = MmapVec::open(&path, &particles(), &reader_opts()).unwrap();
    // The header's count runs ahead of the published one (JavaScript's pushes between two
    // publishes): a reader never takes it while the writer holds its lock.
    fill(&mut w, 20);
    w.live().unwrap().publish(10);
    r.follow().unwrap();
    assert_eq!(r.len(), 10);
    drop(w);
    r.follow().unwrap();
    check_particles(&r, 20);
}

#[test]
fn snapshots_hold_the_state_between_two_units() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut w, 100);
    let mut r = MmapVec::open(&path, &particles(), &reader_opts()).unwrap();
    let (seq, len) = r.snapshot_state().unwrap().unwrap();
    assert_eq!(len, 100);
    assert!(r.snapshot_still(seq));
    w.begin_unit();
    assert!(!r.snapshot_still(seq));
    w.end_unit();
    let (seq2, _) = r.snapshot_state().unwrap().unwrap();
    assert_ne!(seq, seq2);
}

#[test]
fn a_waiter_count_left_by_a_killed_reader_is_cleared_once_no_reader_is_registered() {
    use mmapvec_core::live::OFF_WAITERS;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    let live = w.live().unwrap().clone();
    // A reader that was killed while it waited: its count stays, its registration went.
    live.map()
        .atomic_u32(OFF_WAITERS)
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let r = MmapVec::open(&path, &particles(), &reader_opts()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fill(&mut w, 10);
    assert_eq!(
        live.map()
            .atomic_u32(OFF_WAITERS)
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "cleared under a registered reader"
    );
    drop(r);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fill(&mut w, 20);
    assert_eq!(
        live.map()
            .atomic_u32(OFF_WAITERS)
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}
