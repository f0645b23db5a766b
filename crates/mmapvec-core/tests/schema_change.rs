//! Schema changes through the core's public API: addColumn, dropColumn and renameColumn keep
//! every row, change the stored schema atomically, keep the lock on the live header file, and
//! refuse bad requests without touching the disk.

use std::fs;
use std::path::Path;
use std::time::Duration;

use mmapvec_core::{Code, ElemType, MmapVec, OpenOptions};

mod common;
use common::{check, columns, fill, index, opts, particles, schema, snapshot};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const WITH_HP: &str = r#"{"scalar":false,"columns":[{"name":"pos","type":"f32","count":3},{"name":"id","type":"u32","count":1},{"name":"hp","type":"u16","count":1}]}"#;

#[test]
fn add_column_keeps_rows_and_the_new_column_reads_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 3000);
    let cap = v.capacity();
    v.add_column("hp", ElemType::U16, 1).unwrap();
    assert_eq!(v.capacity(), cap, "a new column is sized to the capacity");
    assert_eq!(columns(&v)[2], ("hp".into(), ElemType::U16, 1, "c2.col".into()));
    check(&v, 3000, Some("pos"), Some("id"));
    let (hp, ho, len) = v.column_region(2);
    assert_eq!(len, cap as usize * 2);
    // SAFETY (test): the capacity's rows are mapped.
    let all = unsafe { std::slice::from_raw_parts(hp.base().add(ho), len) };
    assert!(
        all.iter().all(|&b| b == 0),
        "every row of a new column reads zero"
    );
    // The new column grows with the others, and the row count lands in the live header.
    fill(&mut v, cap + 10);
    assert!(v.capacity() > cap);
    drop(v);
    let v = MmapVec::open(&path, &schema(WITH_HP), &opts()).unwrap();
    check(&v, cap + 10, Some("pos"), Some("id"));
    drop(v);
    let e = MmapVec::open(&path, &particles(), &opts()).unwrap_err();
    assert_eq!(e.code, Code::Schema);
    assert!(
        e.message.contains("the stored schema has no column")
            || e.message.contains("is not in the requested schema"),
        "{e}"
    );
    assert!(e.message.contains("vec.dropColumn('hp')"), "{e}");
}

#[test]
fn drop_column_deletes_its_file_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 2000);
    v.drop_column("pos").unwrap();
    assert_eq!(names(&path), ["c1.col", "header", "live"]);
    check(&v, 2000, None, Some("id"));
    fill_id_only(&mut v, 2100);
    drop(v);
    let only_id = schema(r#"{"scalar":false,"columns":[{"name":"id","type":"u32","count":1}]}"#);
    let v = MmapVec::open(&path, &only_id, &opts()).unwrap();
    check(&v, 2100, None, Some("id"));
    drop(v);
    let e = MmapVec::open(&path, &particles(), &opts()).unwrap_err();
    assert_eq!(e.code, Code::Schema);
    assert!(e.message.contains("vec.addColumn('pos', ['f32', 3])"), "{e}");
}

fn fill_id_only(v: &mut MmapVec, rows: u64) {
    if v.capacity() < rows {
        v.grow(rows, true).unwrap();
    }
    let (id, io, _) = v.column_region(index(v, "id"));
    for i in v.len()..rows {
        // SAFETY (test): rows below the capacity are mapped read-write.
        unsafe { id.base().add(io).cast::<u32>().add(i as usize).write(i as u32) };
    }
    v.set_len(rows).unwrap();
}

#[test]
fn rename_column_keeps_the_data_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 500);
    v.rename_column("id", "key").unwrap();
    assert_eq!(columns(&v)[1], ("key".into(), ElemType::U32, 1, "c1.col".into()));
    check(&v, 500, Some("pos"), Some("key"));
    v.rename_column("key", "key").unwrap();
    drop(v);
    let renamed = schema(
        r#"{"scalar":false,"columns":[{"name":"key","type":"u32","count":1},{"name":"pos","type":"f32","count":3}]}"#,
    );
    let v = MmapVec::open(&path, &renamed, &opts()).unwrap();
    check(&v, 500, Some("pos"), Some("key"));
    drop(v);
    let e = MmapVec::open(&path, &particles(), &opts()).unwrap_err();
    assert_eq!(e.code, Code::Schema);
    assert!(e.message.contains("vec.renameColumn('key', 'id')"), "{e}");
}

#[test]
fn bad_changes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 100);
    v.flush().unwrap();
    let before = snapshot(&path);
    let long = "x".repeat(300);
    let cases: Vec<(&str, Code, mmapvec_core::Result<()>)> = vec![
        ("duplicate", Code::Schema, v.add_column("id", ElemType::U8, 1)),
        ("empty name", Code::Invalid, v.add_column("", ElemType::U8, 1)),
        ("long name", Code::Invalid, v.add_column(&long, ElemType::U8, 1)),
        ("zero width", Code::Invalid, v.add_column("w", ElemType::U8, 0)),
        (
            "too wide",
            Code::Invalid,
            v.add_column("w", ElemType::U8, (1 << 20) + 1),
        ),
        ("drop unknown", Code::Schema, v.drop_column("nope")),
        ("rename unknown", Code::Schema, v.rename_column("nope", "x")),
        ("rename onto another", Code::Schema, v.rename_column("pos", "id")),
        ("rename to empty", Code::Invalid, v.rename_column("pos", "")),
    ];
    for (what, code, r) in cases {
        let e = r.expect_err(what);
        assert_eq!(e.code, code, "{what}: {e}");
        assert!(e.message.contains(&path.display().to_string()), "{what}: {e}");
    }
    v.drop_column("pos").unwrap();
    let before_last = snapshot(&path);
    let e = v.drop_column("id").unwrap_err();
    assert_eq!(e.code, Code::Schema);
    assert!(e.message.contains("only column"), "{e}");
    assert_eq!(snapshot(&path), before_last);
    drop(v);
    assert_ne!(before, before_last);
}

#[test]
fn read_only_and_scalar_vecs_refuse_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    drop(MmapVec::open(&path, &particles(), &opts()).unwrap());
    let before = snapshot(&path);
    let ro = OpenOptions {
        read_only: true,
        ..opts()
    };
    let mut v = MmapVec::open(&path, &particles(), &ro).unwrap();
    assert_eq!(
        v.add_column("hp", ElemType::U8, 1).unwrap_err().code,
        Code::ReadOnly
    );
    assert_eq!(v.drop_column("id").unwrap_err().code, Code::ReadOnly);
    assert_eq!(v.rename_column("id", "k").unwrap_err().code, Code::ReadOnly);
    drop(v);
    assert_eq!(snapshot(&path), before);

    let spath = dir.path().join("s.mvec");
    let scalar = schema(r#"{"scalar":true,"columns":[{"name":"value","type":"f64","count":1}]}"#);
    let mut s = MmapVec::open(&spath, &scalar, &opts()).unwrap();
    let before = snapshot(&spath);
    let e = s.add_column("hp", ElemType::U8, 1).unwrap_err();
    assert_eq!(e.code, Code::Schema);
    assert!(e.message.contains("plain values"), "{e}");
    assert_eq!(s.rename_column("value", "v").unwrap_err().code, Code::Schema);
    assert_eq!(s.drop_column("value").unwrap_err().code, Code::Schema);
    assert_eq!(snapshot(&spath), before);
}

#[test]
fn the_lock_moves_to_the_new_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    v.add_column("hp", ElemType::U16, 1).unwrap();
    for s in [particles(), schema(WITH_HP)] {
        let e = MmapVec::open(&path, &s, &opts()).unwrap_err();
        assert_eq!(e.code, Code::Locked, "{e}");
    }
    // Readers open beside the writer, and find the new header.
    let reader = OpenOptions {
        read_only: true,
        ..opts()
    };
    let r = MmapVec::open(&path, &schema(WITH_HP), &reader).unwrap();
    assert_eq!(r.schema().columns.len(), 3);
    drop(r);
    let e = MmapVec::open(&path, &particles(), &reader).unwrap_err();
    assert_eq!(e.code, Code::Schema, "{e}");
    drop(v);
    drop(MmapVec::open(&path, &schema(WITH_HP), &opts()).unwrap());
}

/// An opener that waits for the lock while the holder replaces the header must end up with the
/// live header (and so see the new schema), not with a lock on the replaced file.
#[test]
fn a_waiting_opener_locks_the_live_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 10);
    let p2 = path.clone();
    let waiter = std::thread::spawn(move || {
        let o = OpenOptions {
            lock_timeout: Duration::from_secs(20),
            ..opts()
        };
        MmapVec::open(&p2, &particles(), &o).map(|v| v.len())
    });
    // The waiter has opened the old header file by now (its open takes microseconds); the
    // assertion below holds either way, the sleep only makes the interesting case likely.
    std::thread::sleep(Duration::from_millis(200));
    v.add_column("hp", ElemType::U16, 1).unwrap();
    drop(v);
    let e = waiter.join().unwrap().unwrap_err();
    assert_eq!(e.code, Code::Schema, "{e}");
}

#[test]
fn leftovers_of_an_interrupted_change_are_ignored_then_removed_by_the_next_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 100);
    drop(v);
    // What a crash before a rename leaves: a column file and a header file nothing names.
    fs::write(path.join("c7.col"), vec![0xAB; 8192]).unwrap();
    fs::write(path.join(".header-123-abc-0.tmp"), b"half a header").unwrap();
    fs::write(path.join("notes.txt"), b"not ours").unwrap();
    let all = names(&path);
    for read_only in [true, false] {
        let o = OpenOptions { read_only, ..opts() };
        let v = MmapVec::open(&path, &particles(), &o).unwrap();
        check(&v, 100, Some("pos"), Some("id"));
        drop(v);
        assert_eq!(
            names(&path),
            all,
            "opening (read_only {read_only}) changes no file"
        );
    }
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    // A refused change removes nothing either.
    assert_eq!(v.drop_column("nope").unwrap_err().code, Code::Schema);
    assert_eq!(names(&path), all);
    // A new column never takes the name of a file that was there.
    v.add_column("hp", ElemType::U16, 1).unwrap();
    assert_eq!(columns(&v)[2].3, "c8.col");
    assert_eq!(
        names(&path),
        ["c0.col", "c1.col", "c8.col", "header", "live", "notes.txt"]
    );
    check(&v, 100, Some("pos"), Some("id"));
}

#[test]
fn temp_vecs_change_schema_without_leaving_files() {
    let before = common::temp_entries();
    let mut v = MmapVec::temp(&particles(), &opts()).unwrap();
    fill(&mut v, 1500);
    v.add_column("hp", ElemType::I64, 2).unwrap();
    v.rename_column("pos", "p").unwrap();
    v.drop_column("id").unwrap();
    check(&v, 1500, Some("p"), None);
    v.grow(5000, false).unwrap();
    assert_eq!(v.len(), 1500);
    common::assert_no_new_temp_entries(&before);
}

#[test]
fn every_change_is_durable_and_carries_the_row_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 777);
    v.add_column("a", ElemType::Bool, 1).unwrap();
    v.rename_column("a", "b").unwrap();
    v.drop_column("b").unwrap();
    assert_eq!(v.len(), 777);
    // The length now lands in the live header file, which the next open reads.
    v.set_len(700).unwrap();
    drop(v);
    let v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    check(&v, 700, Some("pos"), Some("id"));
}
