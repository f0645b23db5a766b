//! `verify` beside a writer: a writer thread adds and drops a column, pushes and shrinks, while
//! two other threads check the vec as fast as they can. The vec is sound throughout, so no
//! check may report a problem (nor give up on a vec that keeps changing, for a writer that
//! pauses between its changes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use mmapvec_core::inspect::verify;
use mmapvec_core::{ElemType, MmapVec};

mod common;
use common::{fill, opts, particles};

#[test]
fn verify_beside_a_writer_that_changes_the_schema_and_shrinks_finds_no_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.mvec");
    drop(MmapVec::open(&path, &particles(), &opts()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let (path, done) = (path.clone(), done.clone());
            thread::spawn(move || {
                let mut found = Vec::new();
                let mut runs = 0u64;
                while !done.load(Ordering::Acquire) {
                    runs += 1;
                    match verify(&path) {
                        Ok(problems) if problems.is_empty() => {}
                        Ok(problems) => found.push(format!("{problems:?}")),
                        Err(e) => found.push(e.to_string()),
                    }
                }
                (runs, found)
            })
        })
        .collect();
    let mut v = MmapVec::open(&path, &particles(), &opts()).unwrap();
    for k in 1..=60u64 {
        v.add_column("x", ElemType::Bool, 1).unwrap();
        let n = v.len();
        fill(&mut v, n + 1000);
        v.drop_column("x").unwrap();
        fill(&mut v, n + 3000);
        if k % 3 == 0 {
            v.set_len(100).unwrap();
            v.shrink_to_fit().unwrap();
        }
    }
    drop(v);
    done.store(true, Ordering::Release);
    let mut runs = 0;
    let mut found = Vec::new();
    for c in checkers {
        let (n, f) = c.join().unwrap();
        runs += n;
        found.extend(f);
    }
    assert!(
        found.is_empty(),
        "{} of {runs} checks beside the writer found problems, the first: {}",
        found.len(),
        found[0]
    );
    assert_eq!(verify(&path).unwrap(), vec![]);
}
