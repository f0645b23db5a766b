//! Packed columns (`OpenOptions::pack`): a vec opened with `PACK_MIN_BYTES` or more maps its
//! columns back to back in one pack, so one view covers them all; growth moves them out.

use mmapvec_core::vec::PACK_MIN_BYTES;
use mmapvec_core::{MmapVec, OpenOptions};

mod common;
use common::{check_particles, fill, index, particles};

/// 16 bytes a row (pos: 3 x f32, id: u32): enough rows for the columns to be packed.
const ROWS: u64 = (PACK_MIN_BYTES / 16 + 4096) as u64;

/// Writes `rows` rows to a new vec at `path` and closes it, so that it opens with that many.
fn written(path: &std::path::Path, rows: u64) {
    let mut v = MmapVec::open(path, &particles(), &OpenOptions::default()).unwrap();
    fill(&mut v, rows);
}

fn packing() -> OpenOptions {
    OpenOptions {
        pack_min_bytes: Some(PACK_MIN_BYTES),
        ..OpenOptions::default()
    }
}

#[test]
fn a_large_vec_opens_packed_and_its_columns_sit_apart_inside_one_pack() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    written(&path, ROWS);
    let v = MmapVec::open(&path, &particles(), &packing()).unwrap();
    assert!(v.is_packed());
    check_particles(&v, ROWS);
    let (pack, pos_at) = v.column_pack(index(&v, "pos")).unwrap();
    let (pack2, id_at) = v.column_pack(index(&v, "id")).unwrap();
    assert!(std::sync::Arc::ptr_eq(&pack, &pack2), "one pack");
    let (pos_rows, id_rows) = (ROWS as usize * 12, ROWS as usize * 4);
    let (lo, lo_len, hi) = if pos_at < id_at {
        (pos_at, pos_rows, id_at)
    } else {
        (id_at, id_rows, pos_at)
    };
    assert!(lo + lo_len <= hi, "columns overlap: {pos_at} {id_at}");
    assert!(pos_at + pos_rows <= pack.len() && id_at + id_rows <= pack.len());
    // Every byte of the pack is mapped read-write, between the columns too.
    let page = 4096;
    for off in (0..pack.len()).step_by(page) {
        // SAFETY (test): the pack's whole length is mapped while `pack` lives.
        unsafe { pack.base().add(off).read_volatile() };
    }
    // The column's own region is the window the pack gave it.
    let (region, offset, _) = v.column_region(index(&v, "pos"));
    assert_eq!(
        region.base().wrapping_add(offset),
        pack.base().wrapping_add(pos_at)
    );
}

#[test]
fn small_vecs_and_vecs_opened_without_the_option_are_not_packed() {
    let dir = tempfile::tempdir().unwrap();
    written(&dir.path().join("small"), 1000);
    let v = MmapVec::open(&dir.path().join("small"), &particles(), &packing()).unwrap();
    assert!(!v.is_packed());
    written(&dir.path().join("big"), ROWS);
    let v = MmapVec::open(&dir.path().join("big"), &particles(), &OpenOptions::default()).unwrap();
    assert!(!v.is_packed());
    assert!(v.column_pack(0).is_none());
}

#[test]
fn growth_moves_every_column_out_of_the_pack_and_keeps_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g");
    written(&path, ROWS);
    let mut v = MmapVec::open(&path, &particles(), &packing()).unwrap();
    assert!(v.is_packed());
    let (pack, id_at) = v.column_pack(index(&v, "id")).unwrap();
    // SAFETY (test): the pack stays mapped while `pack` lives; row 5's id is below the length.
    let id5 = || unsafe { pack.base().add(id_at).cast::<u32>().add(5).read_volatile() };
    assert_eq!(id5(), 5);
    let growth = v.grow(v.capacity() + 1, true).unwrap();
    assert_eq!(growth.moved.len(), 2, "both columns moved");
    assert!(!v.is_packed());
    check_particles(&v, ROWS);
    // The windows went back to zero pages: a view of the old pack no longer reaches the files.
    assert_eq!(id5(), 0);
    fill(&mut v, ROWS + 10);
    drop(v);
    let v = MmapVec::open(&path, &particles(), &OpenOptions::default()).unwrap();
    check_particles(&v, ROWS + 10);
}

#[test]
fn a_packed_vec_shrinks_drops_and_adds_columns_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let mut v = MmapVec::open(
        &path,
        &particles(),
        &OpenOptions {
            capacity: ROWS,
            ..packing()
        },
    )
    .unwrap();
    assert!(
        v.is_packed(),
        "created with a large capacity, the vec opens packed"
    );
    fill(&mut v, 500);
    v.flush().unwrap();
    v.shrink_to_fit().unwrap();
    assert!(v.is_packed(), "shrinking stays inside the windows");
    check_particles(&v, 500);
    let (pack, _) = v.column_pack(0).unwrap();
    // The freed pages are zero pages now, not pages past the end of a shorter file.
    for off in (0..pack.len()).step_by(4096) {
        // SAFETY (test): the pack's whole length is mapped while `pack` lives.
        unsafe { pack.base().add(off).read_volatile() };
    }
    v.add_column("w", mmapvec_core::ElemType::F64, 1).unwrap();
    v.drop_column("pos").unwrap();
    common::check(&v, 500, None, Some("id"));
    v.flush().unwrap();
    drop(v);
    let v = MmapVec::open_stored(&path, &OpenOptions::default()).unwrap();
    common::check(&v, 500, None, Some("id"));
}

#[test]
fn a_growth_that_fails_halfway_leaves_the_pack_and_its_memory_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    written(&path, ROWS);
    // Packed columns need no reservation at open; growth asks for one larger than the address
    // space, so moving the first column out of the pack fails.
    let huge = OpenOptions {
        reservation: 1 << 47,
        ..packing()
    };
    let mut v = MmapVec::open(&path, &particles(), &huge).unwrap();
    assert!(v.is_packed());
    let (pack, id_at) = v.column_pack(index(&v, "id")).unwrap();
    let capacity = v.capacity();
    let err = v.grow(capacity + 1, true).unwrap_err();
    assert!(err.message.contains("reserving address space"), "{}", err.message);
    assert!(v.is_packed(), "no column left the pack");
    assert_eq!(v.capacity(), capacity);
    // SAFETY (test): the pack stays mapped while `pack` lives; row 5 is below the length.
    assert_eq!(
        unsafe { pack.base().add(id_at).cast::<u32>().add(5).read_volatile() },
        5
    );
    check_particles(&v, ROWS);
}
