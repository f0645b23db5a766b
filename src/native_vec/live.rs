//! The binding's side of live readers (docs/DESIGN.md, "Live readers"): a reader's refresh, the
//! state a snapshot copies, the wait for the writer's next publish, and the writer's wake-up and
//! units of writes for modes where JavaScript cannot reach the live file itself.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mmapvec_core::vec::Followed;
use mmapvec_core::MmapVec;
use napi::bindgen_prelude::Object;
use napi::{Env, JsDeferred};
use napi_derive::napi;

use super::NativeVec;
use crate::error::{js_error, ErrorCode, JsError, Result};
use crate::layout::Layout;
use crate::views::Views;

/// The state between two of the writer's units, for a snapshot.
#[napi(object, object_from_js = false)]
pub struct SnapshotState {
    /// The live file's counter: pass it to `snapshotStill` after copying.
    pub seq: u32,
    pub length: f64,
}

/// What a reader's refresh found: the new row count, and the new layout when the views change.
#[napi(object, object_from_js = false)]
pub struct Refreshed<'e> {
    pub length: f64,
    pub layout: Option<Layout<'e>>,
}

/// What settles a `changed` promise, on the JavaScript thread.
type Resolve = Box<dyn FnOnce(Env) -> napi::Result<bool> + Send>;

/// Runs `wait` on a thread of its own and settles `deferred` with its answer. A thread the
/// system refuses (a limit on threads or address space) is an EIO error of the call, not a
/// panic across the Node-API boundary (which would abort the process); the deferred, which
/// nobody will see, is settled all the same, so that it does not keep the event loop alive.
fn spawn_wait(
    v: &MmapVec,
    deferred: JsDeferred<bool, Resolve>,
    wait: impl FnOnce() -> bool + Send + 'static,
) -> Result<()> {
    // The thread takes the deferred once it runs: on a refused thread it is still here.
    let (hand, take) = std::sync::mpsc::channel::<JsDeferred<bool, Resolve>>();
    let spawned = std::thread::Builder::new()
        .name("mmapvec-changed".into())
        .spawn(move || {
            if let Ok(deferred) = take.recv() {
                let changed = wait();
                deferred.resolve(Box::new(move |_| Ok(changed)));
            }
        });
    match spawned {
        Ok(_) => {
            // The thread holds the receiver until it has taken the deferred.
            let _ = hand.send(deferred);
            Ok(())
        }
        Err(e) => {
            deferred.resolve(Box::new(|_| Ok(false)));
            Err(js_error(mmapvec_core::Error::new(
                mmapvec_core::Code::Io,
                format!(
                    "{}: changed(): the system refused a thread to wait on ({e}); await the pending changed() calls before making more, or raise the process's limits",
                    v.path().display()
                ),
            )))
        }
    }
}

/// How often a reader of a vec without a live file looks at the header's row count.
const HEADER_POLL: Duration = Duration::from_millis(2);

#[napi]
impl NativeVec {
    /// A reader's refresh: null when the writer published nothing since the last one; else the
    /// new row count, with the new layout when the views must change (the capacity grew, a
    /// column moved, or the schema changed: the layout then holds the new schema). A writer's
    /// handle has nothing to follow (null).
    #[napi]
    pub fn refresh<'e>(&mut self, env: &'e Env) -> Result<Option<Refreshed<'e>>> {
        match self.vec_mut()?.follow().map_err(js_error)? {
            Followed::Same => Ok(None),
            Followed::Changed { moved, views } => {
                self.after_growth(env, moved);
                let layout = if views { Some(self.layout(env)?) } else { None };
                Ok(Some(Refreshed {
                    length: self.vec()?.len() as f64,
                    layout,
                }))
            }
            Followed::Reshaped => {
                let path = self.vec()?.path().to_path_buf();
                let v = MmapVec::open_stored(&path, &self.opts).map_err(js_error)?;
                // The old columns' views go: their columns may be dropped or moved.
                self.detach_all(env);
                let n = v.schema().columns.len();
                self.column_views = (0..n).map(|_| Views::default()).collect();
                self.column_overlays = (0..n).map(|_| None).collect();
                let length = v.len() as f64;
                self.inner = Some(v);
                Ok(Some(Refreshed {
                    length,
                    layout: Some(self.layout(env)?),
                }))
            }
        }
    }

    /// For a snapshot: the writer's state between two units (its rows mapped), or null when
    /// the schema changed (refresh first). Copy with `readColumn`, then ask `snapshotStill`.
    #[napi]
    pub fn snapshot_state(&mut self) -> Result<Option<SnapshotState>> {
        let st = self.vec_mut()?.snapshot_state().map_err(js_error)?;
        Ok(st.map(|(seq, length)| SnapshotState {
            seq,
            length: length as f64,
        }))
    }

    /// Whether nothing was written since `snapshotState` gave `seq`.
    #[napi]
    pub fn snapshot_still(&self, seq: u32) -> Result<bool> {
        Ok(self.vec()?.snapshot_still(seq))
    }

    /// Resolves true once the writer publishes anything after this reader's last refresh
    /// (false after `timeout_ms`, at close, and at once for a writer's own handle). The wait is
    /// a thread of its own (a futex on Linux), never the event loop or libuv's pool.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn changed<'e>(&self, env: &'e Env, timeout_ms: f64) -> Result<Object<'e>> {
        let v = self.vec()?;
        let timeout = Duration::from_secs_f64((timeout_ms.max(0.0) / 1000.0).min(1e9));
        let (deferred, promise) = env
            .create_deferred::<bool, Resolve>()
            .map_err(|e| JsError::new(ErrorCode::Io, format!("making a promise: {}", e.reason)))?;
        let cancel = self.cancel.clone();
        if !v.is_read_only() {
            deferred.resolve(Box::new(|_| Ok(false)));
            return Ok(promise);
        }
        match v.live().cloned() {
            Some(live) => {
                let since = v.seen_seq();
                spawn_wait(v, deferred, move || live.wait_change(since, timeout, &cancel))?;
            }
            None => {
                // No live file (no writer of this mmapvec has opened the vec): the header's
                // row count is all there is to watch.
                let (header, at) = v.header_region();
                let seen = v.len() as f64;
                spawn_wait(v, deferred, move || {
                    let start = std::time::Instant::now();
                    loop {
                        if header.read_f64(at) != seen {
                            break true;
                        }
                        if cancel.load(Ordering::Acquire) || start.elapsed() >= timeout {
                            break false;
                        }
                        std::thread::sleep(HEADER_POLL.min(timeout.saturating_sub(start.elapsed())));
                    }
                })?;
            }
        }
        Ok(promise)
    }

    /// The writer's wake-up of waiting readers, after JavaScript published through the live
    /// file's mapping and saw waiters.
    #[napi]
    pub fn wake(&self) -> Result<()> {
        if let Some(l) = self.vec()?.live() {
            l.wake();
        }
        Ok(())
    }

    /// Begins a unit of writes readers see whole (buffered mode's write-back, and every mode's
    /// batch where JavaScript has no view of the live file).
    #[napi]
    pub fn begin_unit(&self) -> Result<()> {
        self.vec()?.begin_unit();
        Ok(())
    }

    /// Ends the unit, publishing the row count.
    #[napi]
    pub fn end_unit(&self) -> Result<()> {
        self.vec()?.end_unit();
        Ok(())
    }
}
