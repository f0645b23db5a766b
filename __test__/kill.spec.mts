// Kill at any moment: a child changes a vec at random (push, pushMany, set, truncate, reserve,
// shrinkToFit, flush) and is killed with SIGKILL at a random instant, again and again. After
// every kill the vec must open at once (the lock is free), and every row below its length must
// be exactly what the child wrote there.
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
// @ts-expect-error a plain JavaScript fixture module without types
import { Schema, row } from './fixtures/chaos-rows.mjs'
import { scratch, startChild } from './helpers/util.mjs'

const soak = Number(process.env.MMAPVEC_SOAK) || 1
const KILLS = 200 * soak
const LANES = 2
const seed = Number(process.env.MMAPVEC_SEED) || 20261122
const dir = scratch()

type Row = { a: number; b: bigint; c: number[]; ok: boolean }
const expected = row as (i: number) => Row

let prng = seed
const rnd = () => ((prng = (Math.imul(prng, 1664525) + 1013904223) >>> 0) / 2 ** 32)

async function lane(id: number, kills: number) {
  const stats = { kills: 0, rowsChecked: 0, maxLength: 0, fresh: 0 }
  const path = join(dir, `lane${id}.mvec`)
  for (let k = 0; k < kills; k++) {
    // Now and then start over, so that some kills land while the vec is being created.
    if (k % 25 === 0) {
      rmSync(path, { recursive: true, force: true })
      stats.fresh++
    }
    const c = startChild('chaos.mjs', [path, String(seed + id * 1_000_003 + k)])
    await c.ready.catch(() => undefined)
    await new Promise((r) => setTimeout(r, rnd() * 60))
    c.child.kill('SIGKILL')
    await c.exited
    stats.kills++
    const v = MmapVec.open(path, Schema as { a: 'f64'; b: 'i64'; c: readonly ['u8', 2]; ok: 'bool' })
    try {
      stats.maxLength = Math.max(stats.maxLength, v.length)
      const { a, b, c: cs, ok } = v.columns
      for (let i = 0; i < v.length; i++) {
        const r = expected(i)
        if (a[i] !== r.a || b[i] !== r.b || cs[2 * i] !== r.c[0] || cs[2 * i + 1] !== r.c[1] || ok[i] !== (r.ok ? 1 : 0)) {
          throw new Error(`after kill ${k} of lane ${id}: row ${i} of ${v.length} is ${JSON.stringify(v.get(i), (_: string, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))}`)
        }
      }
      stats.rowsChecked += v.length
    } finally {
      v.close()
    }
  }
  return stats
}

test(`${KILLS} kills at random moments lose nothing and leave the lock free`, async (t) => {
  const per = Math.ceil(KILLS / LANES)
  const results = await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i, per)))
  const total = results.reduce((s, r) => ({
    kills: s.kills + r.kills,
    rowsChecked: s.rowsChecked + r.rowsChecked,
    maxLength: Math.max(s.maxLength, r.maxLength),
    fresh: s.fresh + r.fresh,
  }))
  t.log(`seed ${seed}: ${total.kills} kills survived, ${total.rowsChecked} rows checked, longest vec ${total.maxLength} rows, ${total.fresh} restarts from nothing`)
  t.true(total.kills >= KILLS)
  t.true(total.maxLength > 0, 'the children made progress before being killed')
})
