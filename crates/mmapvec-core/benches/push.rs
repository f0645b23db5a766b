//! The core's own push loop, for comparison with the JavaScript push (`npm run bench`): the
//! same five-field row, written through the same mapped columns, from an empty vec.
//! Prints `{"rowsPerSecond": ...}` (the median of five runs).

use std::time::Instant;

use mmapvec_core::{MmapVec, OpenOptions, Schema};

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let dir = std::env::var("MMAPVEC_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let schema = Schema::parse_request(
        r#"{"scalar":false,"columns":[{"name":"x","type":"f32","count":1},{"name":"y","type":"f32","count":1},{"name":"vx","type":"f32","count":1},{"name":"vy","type":"f32","count":1},{"name":"id","type":"u32","count":1}]}"#,
    )
    .expect("valid schema");
    let mut times = Vec::new();
    for run in 0..6 {
        let path = dir.join(format!("rust-push-{run}.mvec"));
        let _ = std::fs::remove_dir_all(&path);
        let mut v = MmapVec::open(&path, &schema, &OpenOptions::default()).expect("open");
        let start = Instant::now();
        let mut ptrs = [std::ptr::null_mut::<u8>(); 5];
        let mut cap = 0;
        for i in 0..n {
            if i == cap {
                v.grow(i + 1, true).expect("grow");
                cap = v.capacity();
                for (k, p) in ptrs.iter_mut().enumerate() {
                    let (region, offset, _) = v.column_region(k);
                    *p = region.base().wrapping_add(offset);
                }
            }
            let f = i as f32;
            // SAFETY: row i is below the capacity, so every column holds it in mapped memory;
            // the pointers were refreshed after the last growth.
            unsafe {
                ptrs[0].cast::<f32>().add(i as usize).write(f);
                ptrs[1].cast::<f32>().add(i as usize).write(f);
                ptrs[2].cast::<f32>().add(i as usize).write(1.0);
                ptrs[3].cast::<f32>().add(i as usize).write(-1.0);
                ptrs[4].cast::<u32>().add(i as usize).write(i as u32);
            }
            v.set_len(i + 1).expect("set_len");
        }
        let secs = start.elapsed().as_secs_f64();
        drop(v);
        let _ = std::fs::remove_dir_all(&path);
        if run > 0 {
            times.push(secs);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("{{\"rowsPerSecond\": {}}}", n as f64 / times[times.len() / 2]);
}
