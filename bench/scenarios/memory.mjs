// 8. memory: the RSS of a fresh process after opening a big vec and reading one row. The vec is
// built by this script, then measured in a child process of its own.
import { spawnSync } from 'node:child_process'
import { MmapVec } from 'mmapvec'
import { ROW_BYTES, Row, fresh, quick, report } from '../lib.mjs'

const [, , role, path] = process.argv
if (role === 'measure') {
  const before = process.memoryUsage().rss
  const v = MmapVec.open(path, Row, { readOnly: true })
  v.get(v.length - 1)
  const after = process.memoryUsage().rss
  console.log(JSON.stringify({ before, after, length: v.length }))
  v.close()
} else {
  const BYTES = quick ? 512 * 2 ** 20 : 4 * 2 ** 30
  const N = Math.floor(BYTES / ROW_BYTES)
  const p = fresh('huge.mvec')
  const v = MmapVec.open(p, Row, { capacity: N })
  const CH = 1 << 22
  const zero = new Float32Array(CH)
  const zid = new Uint32Array(CH)
  for (let done = 0; done < N; done += CH) {
    const n = Math.min(CH, N - done)
    v.pushMany({ x: zero.subarray(0, n), y: zero.subarray(0, n), vx: zero.subarray(0, n), vy: zero.subarray(0, n), id: zid.subarray(0, n) })
  }
  v.close()
  const r = spawnSync(process.execPath, [process.argv[1], 'measure', p], { encoding: 'utf8' })
  const m = JSON.parse(r.stdout)
  fresh('huge.mvec')
  const size = quick ? '512 MiB' : '4 GiB'
  report([
    { scenario: 'memory', subject: `RSS after opening a ${size} vec and reading one row`, value: m.after, unit: 'B', absoluteTarget: 64 * 2 ** 20, lowerIsBetter: true },
    { scenario: 'memory', subject: 'RSS of the same process before opening it', value: m.before, unit: 'B', baseline: true, lowerIsBetter: true },
  ])
}
