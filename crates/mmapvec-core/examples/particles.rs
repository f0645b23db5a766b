//! A vec of particles from Rust: open it with a schema, push rows, read a column back, flush,
//! and open it again. Run it with `cargo run -p mmapvec-core --example particles`.

use std::error::Error;

use mmapvec_core::{MmapVec, OpenOptions, Schema};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("mmapvec-example-{}", std::process::id()));
    let path = dir.join("particles.mvec");
    let schema = Schema::parse_request(
        r#"{"scalar":false,"columns":[
            {"name":"pos","type":"f32","count":3},
            {"name":"id","type":"u32","count":1}
        ]}"#,
    )?;

    // Creates the vec (a directory) when it is missing, and takes its write lock.
    let mut v = MmapVec::open(&path, &schema, &OpenOptions::default())?;
    // Columns are stored in an order of the vec's own: find them by name.
    let column = |v: &MmapVec, name: &str| v.schema().columns.iter().position(|c| c.name == name);
    let (pos, id) = (column(&v, "pos").unwrap(), column(&v, "id").unwrap());

    // Push 1000 rows: make room, write each column's new rows, then move the length, which is
    // what makes them part of the vec (a crash before it leaves the vec as it was).
    let first = v.len();
    let rows = 1000u64;
    v.grow(first + rows, true)?;
    let positions: Vec<u8> = (first..first + rows)
        .flat_map(|i| [i as f32, 2.0 * i as f32, 0.5])
        .flat_map(f32::to_ne_bytes)
        .collect();
    let ids: Vec<u8> = (first..first + rows)
        .flat_map(|i| (i as u32).to_ne_bytes())
        .collect();
    v.write_rows(pos, first, &positions)?;
    v.write_rows(id, first, &ids)?;
    v.set_len(first + rows)?;

    // Read a column: its rows are native-endian values, back to back.
    let mut bytes = vec![0u8; v.len() as usize * 4];
    v.read_column(id, &mut bytes)?;
    let last = u32::from_ne_bytes(bytes[bytes.len() - 4..].try_into()?);
    println!(
        "{}: {} rows, capacity {}, last id {last}",
        path.display(),
        v.len(),
        v.capacity()
    );

    // Make it durable (column data first, then the header that claims it), then close it.
    v.flush()?;
    drop(v);

    // Open it again, read-only, with the schema it stores.
    let read_only = OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    };
    let v = MmapVec::open_stored(&path, &read_only)?;
    println!("reopened: {} rows, schema {}", v.len(), v.schema().describe());
    assert_eq!(v.len(), first + rows);
    drop(v);

    MmapVec::remove(&path)?;
    std::fs::remove_dir(&dir)?;
    Ok(())
}
