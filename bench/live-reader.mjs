// A reader process for bench/scenarios/live.mjs: opens the vec readOnly beside the writer and
// follows it until told to stop (stdin closes). With `latency`, it records how long after the
// writer stamped its last row (column `t`, process.hrtime in ms: the same monotonic clock in
// every process) each wake-up of `changed()` came, and prints the samples as JSON at the end.
// argv: path follow|latency
import { MmapVec } from 'mmapvec'

const [path, what] = process.argv.slice(2)
const r = MmapVec.open(path, undefined, { readOnly: true })
let stop = false
process.stdin.on('end', () => (stop = true))
process.stdin.resume()
console.log('ready')
const samples = []
while (!stop) {
  if (!(await r.changed({ timeoutMs: 200 }))) continue
  const now = Number(process.hrtime.bigint()) / 1e6
  r.refresh()
  if (what === 'latency' && r.length > 0) samples.push(now - r.columns.t[r.length - 1])
}
if (what === 'latency') console.log(JSON.stringify(samples))
r.close()
