//! Faulting the pages a growth added into memory ahead of the writer, on a thread of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sys::Reservation;

use super::MmapVec;

/// How much of each column a growth by `push` faults in ahead of the writer.
const PREFAULT_BYTES: usize = 64 << 20;

/// Faults the pages a growth added into memory on a thread of its own, a chunk of each column
/// at a time in row order, ahead of the pushes that will write them. A first write to a page of
/// a file mapping costs kernel work (page-cache insertion, `page_mkwrite`), which made pushing
/// into fresh pages much slower than into present ones (BENCHMARKS.md, "Targets: met and
/// missed", push); done here, that work runs on another core. Pages are only faulted in, never changed. The thread owns the
/// reservations it touches; the vec stops it (between two chunks) before it shrinks or closes,
/// so that nothing touches its files once it is closed.
#[derive(Debug)]
pub(super) struct Prefault {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Prefault {
    fn start(ranges: Vec<(Arc<Reservation>, usize, usize)>) -> Option<Prefault> {
        const CHUNK: usize = 256 << 10;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mmapvec-prefault".into())
            .spawn(move || {
                let mut at = 0;
                while !flag.load(Ordering::Relaxed) && ranges.iter().any(|(_, from, to)| from + at < *to) {
                    for (region, from, to) in &ranges {
                        if from + at < *to {
                            region.populate_write(from + at, (from + at + CHUNK).min(*to));
                        }
                    }
                    at += CHUNK;
                }
            })
            // Without a thread (resource limits), pushes simply fault the pages in themselves.
            .ok()?;
        Some(Prefault { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

impl MmapVec {
    /// Starts faulting in each column's pages past `old_mapped` (its mapped bytes before a
    /// growth), up to [`PREFAULT_BYTES`] of them.
    pub(super) fn prefault_from(&mut self, old_mapped: &[usize]) {
        let ranges = self
            .columns
            .iter()
            .zip(old_mapped)
            .map(|(c, &from)| (c.region.clone(), from, c.mapped.min(from + PREFAULT_BYTES)))
            .collect();
        self.prefaults.retain(|p| !p.thread.is_finished());
        self.prefaults.extend(Prefault::start(ranges));
    }

    /// Stops every prefault thread (between two chunks) and waits for it: before the vec
    /// shrinks, drops a column or closes, so that nothing touches pages it gives up.
    pub(super) fn stop_prefaults(&mut self) {
        for p in self.prefaults.drain(..) {
            p.stop();
        }
    }
}
