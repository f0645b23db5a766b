//! The asynchronous flush: a job that owns what it syncs, run on the libuv thread pool.

use mmapvec_core::SyncJob;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Result, Task};
use napi_derive::napi;

use crate::error::js_error;

/// A flush prepared by `NativeVec.flushJob()`, run once on the libuv thread pool.
#[napi]
pub struct FlushJob(Option<SyncJob>);

impl FlushJob {
    pub(crate) fn new(job: SyncJob) -> FlushJob {
        FlushJob(Some(job))
    }
}

#[napi]
impl FlushJob {
    #[napi(ts_return_type = "Promise<void>")]
    pub fn run(&mut self) -> AsyncTask<FlushTask> {
        AsyncTask::new(FlushTask(self.0.take().unwrap_or_default()))
    }
}

pub struct FlushTask(SyncJob);

impl Task for FlushTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        self.0.run().map_err(js_error)
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}
