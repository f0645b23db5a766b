#!/usr/bin/env node
// The `mmapvec` command (package.json "bin"). The exit code is set, not forced, so that
// output still buffered for a pipe is written before the process ends.
import { main } from './main.js'

// main settles every error into an exit code; anything else is a bug, and Node reports an
// unhandled rejection with its stack and a non-zero exit.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
