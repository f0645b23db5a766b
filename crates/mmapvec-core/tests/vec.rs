//! The core's behaviour through its public API: creation, reopening, growth in place, locks,
//! shrinking, temp vecs, removal, and refusals of damaged or mismatched vecs.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use mmapvec_core::{Code, MmapVec, OpenOptions};

mod common;
use common::{check_particles, fill, opts, particles, schema, snapshot};

#[test]
fn rows_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/p.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 5000);
    v.flush().unwrap();
    drop(v);
    let v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    check_particles(&v, 5000);
    assert!(v.capacity() >= 5000);
}

#[test]
fn growth_keeps_the_base_address_and_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = MmapVec::open(&dir.path().join("g"), &particles(), &opts()).unwrap();
    let (region, _, _) = v.column_region(0);
    let base = region.base();
    drop(region);
    let mut cap = v.capacity();
    for round in 1..=12u64 {
        fill(&mut v, round * 3000);
        assert!(v.capacity() >= cap);
        cap = v.capacity();
        let (region, _, _) = v.column_region(0);
        assert_eq!(
            region.base(),
            base,
            "a growth within the reservation moved the column"
        );
    }
    check_particles(&v, 36000);
}

#[test]
fn a_growth_past_the_reservation_moves_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let small = OpenOptions {
        reservation: 1 << 20,
        ..opts()
    };
    let mut v = MmapVec::open(&dir.path().join("m"), &particles(), &small).unwrap();
    fill(&mut v, 1000);
    // 12 bytes per row of `pos`: 100,000 rows pass the 1 MiB reservation; `id` (4 bytes) fits.
    let g = v.grow(100_000, false).unwrap();
    assert_eq!(g.moved, vec![0]);
    assert!(v.capacity() >= 100_000);
    check_particles(&v, 1000);
    let g = v.grow(100_001, false).unwrap();
    assert!(g.moved.is_empty());
}

#[test]
fn a_second_writer_gets_elocked_and_readers_open_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    let e = MmapVec::open(&path, &particles(), &opts()).unwrap_err();
    assert_eq!(e.code, Code::Locked);
    assert!(e.message.contains("this same process"), "{}", e.message);
    let ro = OpenOptions {
        read_only: true,
        ..opts()
    };
    let r0 = MmapVec::open(&path, &particles(), &ro).unwrap();
    drop(v);
    let r1 = MmapVec::open(&path, &particles(), &ro).unwrap();
    let r2 = MmapVec::open(&path, &particles(), &ro).unwrap();
    assert!(r0.is_read_only() && r1.is_read_only() && r2.is_read_only());
    // A writer opens beside readers; a second one still cannot.
    let w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    assert_eq!(
        MmapVec::open(&path, &particles(), &opts()).unwrap_err().code,
        Code::Locked
    );
    drop(w);
}

#[test]
fn the_lock_is_released_on_drop_even_while_mappings_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    let (header, _) = v.header_region();
    let (col, _, _) = v.column_region(0);
    drop(v);
    // The mappings are still alive (a view could hold them); the lock must not be.
    let _w = MmapVec::open(&path, &particles(), &opts()).unwrap();
    drop((header, col));
}

#[test]
fn lock_timeout_waits_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let _v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    let start = Instant::now();
    let waiting = OpenOptions {
        lock_timeout: Duration::from_millis(150),
        ..opts()
    };
    let e = MmapVec::open(&path, &particles(), &waiting).unwrap_err();
    assert_eq!(e.code, Code::Locked);
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[test]
fn create_new_refuses_an_existing_vec_and_open_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let no_create = OpenOptions {
        create: false,
        ..opts()
    };
    assert_eq!(
        MmapVec::open(&path, &particles(), &no_create).unwrap_err().code,
        Code::NotFound
    );
    assert!(!path.exists(), "a refused open must not create anything");
    drop(MmapVec::open(&path, &particles(), &opts()).unwrap());
    let create_new = OpenOptions {
        create_new: true,
        ..opts()
    };
    assert_eq!(
        MmapVec::open(&path, &particles(), &create_new).unwrap_err().code,
        Code::Exists
    );
}

#[test]
fn schema_and_version_mismatches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    drop(
        MmapVec::open(
            &path,
            &particles(),
            &OpenOptions {
                version: Some(3),
                ..opts()
            },
        )
        .unwrap(),
    );
    let other = schema(
        r#"{"scalar":false,"columns":[{"name":"pos","type":"f64","count":3},{"name":"id","type":"u32","count":1}]}"#,
    );
    let e = MmapVec::open(&path, &other, &opts()).unwrap_err();
    assert_eq!(e.code, Code::Schema);
    assert!(
        e.message.contains("[f32, 3]") && e.message.contains("[f64, 3]"),
        "{}",
        e.message
    );
    let e = MmapVec::open(
        &path,
        &particles(),
        &OpenOptions {
            version: Some(4),
            ..opts()
        },
    )
    .unwrap_err();
    assert_eq!(e.code, Code::Version);
    // Same fields in another order are the same schema; no version asked means no check.
    let reordered = schema(
        r#"{"scalar":false,"columns":[{"name":"id","type":"u32","count":1},{"name":"pos","type":"f32","count":3}]}"#,
    );
    let v = MmapVec::open(&path, &reordered, &opts()).unwrap();
    assert_eq!(v.app_version(), 3);
}

#[test]
fn damaged_vecs_are_refused_with_eformat_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 100);
    drop(v);
    let header = path.join("header");
    let good = fs::read(&header).unwrap();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "empty header",
            Box::new(|p: &Path| fs::write(p.join("header"), b"").unwrap()),
        ),
        (
            "garbage header",
            Box::new(|p: &Path| fs::write(p.join("header"), vec![0xAB; 4096]).unwrap()),
        ),
        ("flipped schema byte", {
            let good = good.clone();
            Box::new(move |p: &Path| {
                let mut b = good.clone();
                b[70] ^= 0x20;
                fs::write(p.join("header"), b).unwrap()
            })
        }),
        ("length beyond the columns", {
            let good = good.clone();
            Box::new(move |p: &Path| {
                let mut b = good.clone();
                b[32..40].copy_from_slice(&1e9f64.to_ne_bytes());
                fs::write(p.join("header"), b).unwrap()
            })
        }),
        (
            "short column file",
            Box::new(|p: &Path| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(p.join("c1.col"))
                    .unwrap()
                    .set_len(64)
                    .unwrap()
            }),
        ),
        (
            "missing column file",
            Box::new(|p: &Path| fs::remove_file(p.join("c0.col")).unwrap()),
        ),
        (
            "header is a directory",
            Box::new(|p: &Path| {
                fs::remove_file(p.join("header")).unwrap();
                fs::create_dir(p.join("header")).unwrap()
            }),
        ),
        (
            "header missing",
            Box::new(|p: &Path| fs::remove_file(p.join("header")).unwrap()),
        ),
    ];
    let pristine = snapshot(&path);
    for (name, damage) in cases {
        for (f, bytes) in &pristine {
            let p = path.join(f);
            if p.is_dir() {
                fs::remove_dir(&p).unwrap();
            }
            fs::write(&p, bytes).unwrap();
        }
        if path.join("header").is_dir() {
            fs::remove_dir(path.join("header")).unwrap();
            fs::write(path.join("header"), &good).unwrap();
        }
        damage(&path);
        let before = snapshot(&path);
        let e = MmapVec::open(&path, &particles(), &opts()).unwrap_err();
        assert_eq!(e.code, Code::Format, "{name}: {e}");
        assert!(
            e.message.contains(&path.display().to_string()),
            "{name}: message names no path: {e}"
        );
        assert_eq!(snapshot(&path), before, "{name}: a failed open changed the files");
    }
}

#[test]
fn a_file_where_a_vec_should_be_is_eformat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"hello").unwrap();
    assert_eq!(
        MmapVec::open(&path, &particles(), &opts()).unwrap_err().code,
        Code::Format
    );
    assert_eq!(fs::read(&path).unwrap(), b"hello");
    assert_eq!(MmapVec::remove(&path).unwrap_err().code, Code::Format);
}

#[test]
fn shrink_to_fit_gives_back_space_and_keeps_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let mut v = MmapVec::open(
        &path,
        &particles(),
        &OpenOptions {
            capacity: 100_000,
            ..opts()
        },
    )
    .unwrap();
    fill(&mut v, 10);
    v.shrink_to_fit().unwrap();
    assert!(v.capacity() < 2000, "capacity {}", v.capacity());
    assert!(fs::metadata(path.join("c0.col")).unwrap().len() <= 4096);
    check_particles(&v, 10);
    fill(&mut v, 3000);
    check_particles(&v, 3000);
}

#[test]
fn temp_vecs_leave_no_files() {
    let before = common::temp_entries();
    let mut v = MmapVec::temp(&particles(), &opts()).unwrap();
    fill(&mut v, 20_000);
    check_particles(&v, 20_000);
    assert!(!v.path().exists());
    common::assert_no_new_temp_entries(&before);
}

#[test]
fn remove_deletes_a_closed_vec_and_refuses_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    assert_eq!(MmapVec::remove(&path).unwrap_err().code, Code::Locked);
    drop(v);
    MmapVec::remove(&path).unwrap();
    assert!(!path.exists());
    assert_eq!(MmapVec::remove(&path).unwrap_err().code, Code::NotFound);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "remove left files behind"
    );
}

#[test]
fn read_only_vecs_refuse_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 10);
    drop(v);
    let mut r = MmapVec::open(
        &path,
        &particles(),
        &OpenOptions {
            read_only: true,
            ..opts()
        },
    )
    .unwrap();
    check_particles(&r, 10);
    assert_eq!(r.grow(100, true).unwrap_err().code, Code::ReadOnly);
    assert_eq!(r.set_len(5).unwrap_err().code, Code::ReadOnly);
    assert_eq!(r.shrink_to_fit().unwrap_err().code, Code::ReadOnly);
    r.flush().unwrap();
}

#[test]
fn what_a_killed_creator_left_is_removed_once_it_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.mvec");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let mk = |name: &str, age: std::time::SystemTime| {
        let d = dir.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("header"), b"half-written").unwrap();
        fs::File::open(&d).unwrap().set_modified(age).unwrap();
        d
    };
    // A pid above any pid_max is a process that is surely gone.
    let dead = mk(".s.mvec.creating-4000000000-1-0", old);
    let dead_removal = mk(".s.mvec.removing-4000000000-1-0", old);
    let recent = mk(".s.mvec.creating-4000000001-1-0", std::time::SystemTime::now());
    let alive = mk(&format!(".s.mvec.creating-{}-1-0", std::process::id()), old);
    let other = mk(".t.mvec.creating-4000000000-1-0", old);
    drop(MmapVec::open(&path, &particles(), &opts()).unwrap());
    assert!(
        !dead.exists() && !dead_removal.exists(),
        "stale work directories remain"
    );
    assert!(
        recent.exists(),
        "a recent one may still be in use (another PID namespace)"
    );
    assert!(alive.exists(), "this process's own must stay");
    assert!(other.exists(), "another vec's must stay");
}

/// Regression: the thread that faults in the pages of a growth went on after close, and
/// changed the column files' mtimes after the vec was closed (found by the EREADONLY test).
#[test]
fn nothing_touches_the_files_once_the_vec_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.mvec");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    v.grow(4_000_000, true).unwrap();
    drop(v);
    let stamp = || {
        let mut s: Vec<_> = fs::read_dir(&path)
            .unwrap()
            .map(|e| {
                let m = e.unwrap().metadata().unwrap();
                (m.len(), m.modified().unwrap())
            })
            .collect();
        s.sort();
        s
    };
    let closed = stamp();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stamp(), closed);
}

/// `write_rows` (pushMany's bulk path) writes through the file; the mapping shows the bytes at
/// once, also over pages the mapping had already written, and they survive a reopen.
#[test]
fn rows_written_through_the_file_show_in_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 3000);
    v.set_len(1000).unwrap();
    let rows = 50_000u64;
    v.grow_for_writes(1000 + rows).unwrap();
    assert!(v.capacity() >= 1000 + rows);
    let (pos, id) = (common::index(&v, "pos"), common::index(&v, "id"));
    let pos_bytes: Vec<u8> = (0..rows * 3).flat_map(|k| (-(k as f32)).to_le_bytes()).collect();
    let id_bytes: Vec<u8> = (0..rows).flat_map(|k| (k as u32 * 7).to_le_bytes()).collect();
    v.write_rows(pos, 1000, &pos_bytes).unwrap();
    v.write_rows(id, 1000, &id_bytes).unwrap();
    assert_eq!(v.len(), 1000, "the length is the caller's to set");
    v.set_len(1000 + rows).unwrap();
    let read = |v: &MmapVec| {
        let mut p = vec![0u8; ((1000 + rows) * 12) as usize];
        let mut i = vec![0u8; ((1000 + rows) * 4) as usize];
        v.read_column(pos, &mut p).unwrap();
        v.read_column(id, &mut i).unwrap();
        (p, i)
    };
    let (p, i) = read(&v);
    assert_eq!(&p[12_000..], &pos_bytes[..]);
    assert_eq!(&i[4000..], &id_bytes[..]);
    assert_eq!(&i[..8], &[0, 0, 0, 0, 1, 0, 0, 0], "rows before are untouched");
    drop(v);
    let v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    assert_eq!(read(&v), (p, i));
}

#[test]
fn write_rows_refuses_rows_past_the_capacity_and_partial_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    fill(&mut v, 10);
    let cap = v.capacity();
    let e = v.write_rows(1, cap, &[0; 4]).unwrap_err();
    assert_eq!(e.code, Code::Range);
    assert!(e.message.contains(&path.display().to_string()), "{}", e.message);
    assert_eq!(v.write_rows(1, 0, &[0; 6]).unwrap_err().code, Code::Range);
    assert_eq!(v.write_rows(9, 0, &[0; 4]).unwrap_err().code, Code::Invalid);
    check_particles(&v, 10);
    drop(v);
    let ro = OpenOptions {
        read_only: true,
        ..opts()
    };
    let mut r = MmapVec::open(&path, &particles(), &ro).unwrap();
    assert_eq!(r.write_rows(1, 0, &[0; 4]).unwrap_err().code, Code::ReadOnly);
    check_particles(&r, 10);
}
