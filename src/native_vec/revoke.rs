//! Keeping a vec's views in step with its memory: what growth, shrinking, a schema change,
//! close and collection do to the ArrayBuffers and overlay memories JavaScript holds (the rules
//! are in `views.rs` and `overlay.rs`).

use std::sync::Arc;

use mmapvec_core::{Growth, MmapVec};
use napi::Env;

use crate::error::Result;

use super::NativeVec;
use crate::error::{closed, js_error};
use crate::overlay::Overlay;
use crate::views::Views;

impl NativeVec {
    /// After a growth: views of columns that had to move are detached. Returns the capacity.
    pub(super) fn after_growth(&mut self, env: &Env, growth: Growth) -> u64 {
        for i in growth.moved {
            self.column_views[i].detach_all(env, true);
        }
        // Growth moves every column out of its pack.
        if self.inner.as_ref().is_some_and(|v| !v.is_packed()) {
            self.pack_views.detach_all(env, true);
        }
        self.inner.as_ref().map_or(0, MmapVec::capacity)
    }

    /// Shrinks the files to the rows in use. Every column view is detached first. Returns the
    /// capacity.
    pub(super) fn shrink(&mut self, env: &Env) -> Result<u64> {
        self.vec_mut()?;
        for views in &mut self.column_views {
            views.detach_all(env, false);
        }
        self.pack_views.detach_all(env, false);
        // Overlays map pages the file is about to lose (a touch there would raise SIGBUS).
        for o in self.column_overlays.iter_mut().filter_map(Option::take) {
            o.detach(env, true, &self.marks);
        }
        let v = self.vec_mut()?;
        v.shrink_to_fit().map_err(js_error)?;
        Ok(v.capacity())
    }

    /// Overlay mode: gives each stored column a memory with its file mapped over its start,
    /// covering `capacity` rows (they start at the column's offset). A column whose capacity
    /// changed gets a new memory, and the old one's views are detached; all or nothing: when a
    /// new memory cannot be made, every column keeps its old one.
    pub(super) fn replace_overlays(&mut self, env: &Env) -> Result<()> {
        let v = self.inner.as_ref().ok_or_else(closed)?;
        let mut fresh = Vec::new();
        for i in 0..self.column_overlays.len() {
            let (file, len) = v.column_file(i);
            if matches!(&self.column_overlays[i], Some(o) if o.len() == len) {
                continue;
            }
            match Overlay::attach(env, &file, len, v.map_mode()) {
                Ok(o) => fresh.push((i, o)),
                Err(e) => {
                    for (_, o) in fresh {
                        o.detach(env, true, &self.marks);
                    }
                    return Err(e);
                }
            }
        }
        for (i, o) in fresh {
            if let Some(old) = self.column_overlays[i].replace(o) {
                old.detach(env, true, &self.marks);
            }
        }
        Ok(())
    }

    /// Runs a schema change, then brings the views in line with whatever it left (a change
    /// can fail after its commit point, when making it durable): views of a dropped column and
    /// of a replaced header are detached; columns keep their views by file, whatever their
    /// new position. Returns the change's result.
    pub(super) fn change_schema(
        &mut self,
        env: &Env,
        change: impl FnOnce(&mut MmapVec) -> mmapvec_core::Result<()>,
    ) -> Result<()> {
        self.vec_mut()?;
        let v = self.inner.as_mut().ok_or_else(closed)?;
        let files: Vec<String> = v.schema().columns.iter().map(|c| c.file.clone()).collect();
        let header = v.header_region().0;
        let packed = |v: &MmapVec| {
            (0..v.schema().columns.len())
                .filter(|&i| v.column_pack(i).is_some())
                .count()
        };
        let packed_before = packed(v);
        let result = change(v);
        // A dropped column's window goes back to zero pages: its views share the pack's
        // buffer with the other columns', so all of them are revoked together.
        if packed(v) < packed_before {
            // The pack still holds the other columns' rows.
            self.pack_views.detach_all(env, false);
        }
        if !Arc::ptr_eq(&header, &v.header_region().0) {
            self.header_views.detach_all(env, true);
            if let Some(o) = self.header_overlay.take() {
                o.detach(env, true, &self.marks);
            }
        }
        let mut old: Vec<(String, Views, Option<Overlay>)> = files
            .into_iter()
            .zip(self.column_views.drain(..))
            .zip(self.column_overlays.drain(..))
            .map(|((f, views), o)| (f, views, o))
            .collect();
        for c in &v.schema().columns {
            let (views, overlay) = match old.iter().position(|(f, _, _)| *f == c.file) {
                Some(k) => {
                    let (_, views, o) = old.swap_remove(k);
                    (views, o)
                }
                None => (Views::default(), None),
            };
            self.column_views.push(views);
            self.column_overlays.push(overlay);
        }
        for (_, mut views, overlay) in old {
            views.detach_all(env, true);
            if let Some(o) = overlay {
                o.detach(env, true, &self.marks);
            }
        }
        result.map_err(js_error)
    }

    /// Detaches every view, lets go of the column files (see [`MmapVec::unmap_columns`]), then
    /// closes the files and releases the lock. The header's mapping goes when the last
    /// ArrayBuffer over it is collected.
    pub(super) fn detach_and_close(&mut self, env: &Env) {
        self.stop_waits();
        self.detach_all(env);
        self.inner = None;
    }

    /// Ends the waits of `changed` still running (they resolve false).
    fn stop_waits(&self) {
        self.cancel.store(true, std::sync::atomic::Ordering::Release);
        // Only with a wait under way: a futex call on the shared page dirties it (the file's
        // modification time would change at a close that changed nothing).
        if Arc::strong_count(&self.cancel) > 1 {
            if let Some(l) = self.inner.as_ref().and_then(MmapVec::live) {
                l.wake_all();
            }
        }
    }

    /// As [`detach_and_close`](Self::detach_and_close), and a vec this open created is removed
    /// again (see [`MmapVec::discard`]).
    pub(super) fn detach_and_discard(&mut self, env: &Env) {
        self.stop_waits();
        self.detach_all(env);
        if let Some(v) = self.inner.take() {
            v.discard();
        }
    }

    pub(super) fn detach_all(&mut self, env: &Env) {
        self.write_back = None;
        self.header_views.detach_all(env, true);
        self.live_views.detach_all(env, true);
        if let Some(o) = self.live_overlay.take() {
            o.detach(env, true, &self.marks);
        }
        for views in &mut self.column_views {
            views.detach_all(env, true);
        }
        self.pack_views.detach_all(env, true);
        self.detach_overlays(env, true);
        self.marks = Default::default();
        if let Some(v) = self.inner.as_mut() {
            v.unmap_columns();
            v.unguard();
        }
    }

    /// For the garbage collector's finalizer, where JavaScript cannot run: releases the lock and
    /// the references; views still alive keep their memory mapped and valid (overlay mode, and a
    /// packed vec's windows: their memory gets zero pages back, so they read zeros and no longer
    /// reach the files).
    pub(super) fn release(&mut self, env: &Env) {
        self.stop_waits();
        self.write_back = None;
        self.header_views.forget();
        self.live_views.forget();
        if let Some(o) = self.live_overlay.take() {
            o.detach(env, false, &self.marks);
        }
        for views in &mut self.column_views {
            views.forget();
        }
        self.pack_views.forget();
        self.detach_overlays(env, false);
        self.marks = Default::default();
        self.inner = None;
    }

    /// Puts anonymous memory back in every overlay and detaches their views.
    fn detach_overlays(&mut self, env: &Env, can_run_js: bool) {
        if let Some(o) = self.header_overlay.take() {
            o.detach(env, can_run_js, &self.marks);
        }
        for o in self.column_overlays.iter_mut().filter_map(Option::take) {
            o.detach(env, can_run_js, &self.marks);
        }
    }
}
