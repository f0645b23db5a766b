//! The asynchronous flush: a job that owns what it syncs, run on the libuv thread pool.

use mmapvec_core::SyncJob;
use napi::bindgen_prelude::AsyncTask;
use napi::bindgen_prelude::JsObjectValue;
use napi::{Env, JsValue, Result, Task};
use napi_derive::napi;

use crate::error::js_error;

/// What a failed flush left for `reject`, which has the env to make its JavaScript error: a
/// task's own error type is napi-rs's, whose `code` could not be the stable one.
type Failure = Option<mmapvec_core::Error>;

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
        AsyncTask::new(FlushTask(self.0.take().unwrap_or_default(), None))
    }
}

pub struct FlushTask(SyncJob, Failure);

impl Task for FlushTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        self.0.run().map_err(|e| {
            let reason = e.message.clone();
            self.1 = Some(e);
            napi::Error::from_reason(reason)
        })
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> Result<()> {
        let Some(e) = self.1.take() else {
            return Err(err);
        };
        // The error with its stable code set, rejected as it is (napi-rs keeps a JavaScript
        // error it is given).
        let coded = js_error(e);
        let mut error = env.create_error(napi::Error::from_reason(coded.reason))?;
        error.set_named_property("code", coded.status.as_ref())?;
        Err(napi::Error::from(error.to_unknown()))
    }
}
