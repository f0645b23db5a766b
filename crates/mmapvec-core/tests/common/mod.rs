//! Helpers shared by the integration tests: a two-column schema and rows written through raw
//! pointers, as JavaScript writes them.
#![allow(dead_code)] // each test file uses a different subset

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use mmapvec_core::{ElemType, MmapVec, OpenOptions, Schema};

pub fn schema(json: &str) -> Schema {
    Schema::parse_request(json).unwrap()
}

pub fn particles() -> Schema {
    schema(
        r#"{"scalar":false,"columns":[{"name":"pos","type":"f32","count":3},{"name":"id","type":"u32","count":1}]}"#,
    )
}

pub fn opts() -> OpenOptions {
    OpenOptions::default()
}

/// The stored schema's columns as (name, type, count, file).
pub fn columns(v: &MmapVec) -> Vec<(String, ElemType, u32, String)> {
    v.schema()
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty, c.count, c.file.clone()))
        .collect()
}

pub fn index(v: &MmapVec, name: &str) -> usize {
    v.schema().columns.iter().position(|c| c.name == name).unwrap()
}

/// Writes `rows` rows (pos = [i, i+1, i+2], id = i) through raw pointers, as JavaScript does.
pub fn fill(v: &mut MmapVec, rows: u64) {
    if v.capacity() < rows {
        v.grow(rows, true).unwrap();
    }
    let (pos, po, _) = v.column_region(index(v, "pos"));
    let (id, io, _) = v.column_region(index(v, "id"));
    for i in v.len()..rows {
        // SAFETY (test): rows below the capacity are mapped read-write.
        unsafe {
            let p = pos.base().add(po).cast::<f32>().add(i as usize * 3);
            for k in 0..3 {
                p.add(k).write((i + k as u64) as f32);
            }
            id.base().add(io).cast::<u32>().add(i as usize).write(i as u32);
        }
    }
    v.set_len(rows).unwrap();
}

/// Checks rows [0, rows) of `pos` and `id`, as [`fill`] wrote them.
pub fn check_particles(v: &MmapVec, rows: u64) {
    check(v, rows, Some("pos"), Some("id"));
}

/// Checks rows [0, rows) of the columns `pos_name` and `id_name` (either may be absent).
pub fn check(v: &MmapVec, rows: u64, pos_name: Option<&str>, id_name: Option<&str>) {
    assert_eq!(v.len(), rows);
    for i in 0..rows as usize {
        if let Some(n) = pos_name {
            let (r, o, _) = v.column_region(index(v, n));
            // SAFETY (test): rows below the length are mapped and written.
            let got = unsafe { r.base().add(o).cast::<f32>().add(i * 3 + 2).read() };
            assert_eq!(got, (i + 2) as f32, "pos of row {i}");
        }
        if let Some(n) = id_name {
            let (r, o, _) = v.column_region(index(v, n));
            // SAFETY (test): as above.
            let got = unsafe { r.base().add(o).cast::<u32>().add(i).read() };
            assert_eq!(got, i as u32, "id of row {i}");
        }
    }
}

/// The names of the entries this process's temp vecs made in the temp directory
/// (`mmapvec-<pid>-...`); other processes' (another test run's scratch directories) are not
/// this process's doing.
pub fn temp_entries() -> Vec<OsString> {
    let mine = format!("mmapvec-{}-", std::process::id());
    fs::read_dir(std::env::temp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(&mine))
        .collect()
}

/// Fails when the temp directory has `mmapvec-*` entries that were not in `before`.
pub fn assert_no_new_temp_entries(before: &[OsString]) {
    let new: Vec<_> = temp_entries()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert!(new.is_empty(), "temp vec left {new:?}");
}

/// Every file of `dir` with its bytes, sorted: compared before and after a refused call.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}
