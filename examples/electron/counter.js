'use strict'
// The part of the Electron example that needs no Electron: a vec of heartbeats, one row per
// second the app runs, kept across launches. main.js drives it; the test suite runs it in plain
// Node with MMAPVEC_MODE=buffered, the mode Electron's V8 memory cage makes mmapvec choose.
const { MmapVec } = require('mmapvec')

const Beat = { at: 'f64', launch: 'u32' }

/**
 * Opens (or creates) the heartbeat log at `path`. Each launch that records a beat gets the next
 * launch number. `autoFlushMs` writes the beats back to disk in the background; in buffered mode
 * that is what a crash would otherwise lose.
 */
function openCounter(path, { autoFlushMs = 1000 } = {}) {
  const v = MmapVec.open(path, Beat, { autoFlushMs, version: 1 })
  const launch = v.length === 0 ? 1 : v.get(v.length - 1).launch + 1
  let beats = 0
  return {
    /** Appends one beat (`at` in ms since the epoch) and returns the new length. */
    beat(at = Date.now()) {
      beats++
      return v.push({ at, launch })
    },
    /** What the window shows: a plain object, so it can cross the IPC bridge. */
    snapshot() {
      return {
        length: v.length,
        launch,
        beatsThisLaunch: beats,
        firstAt: v.length > 0 ? v.get(0).at : null,
        lastAt: v.length > 0 ? v.at(-1).at : null,
        mode: v.mode,
        path: v.path,
      }
    },
    /** Makes every beat so far durable. */
    flush: () => v.flush(),
    /** Writes back, flushes and releases the lock. */
    close: () => v.close(),
  }
}

module.exports = { Beat, openCounter }
