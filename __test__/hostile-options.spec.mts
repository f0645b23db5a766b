// Options objects are the program's code too: a getter (or a Proxy) in an options object runs
// when the option is read. Every call reads its options once, first, before it looks at the
// vec, so a getter that changes the vec (closes it, truncates it, pushes) is seen by the checks
// that follow instead of slipping between them. Runs in every mode the suite runs in.
import test from 'ava'
import { MmapVec, toArrow, writeArrowIPCSync } from 'mmapvec'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { scratch } from './helpers/util.mjs'

const fresh = (() => {
  const dir = scratch()
  let n = 0
  return () => join(dir, `o${n++}.mvec`)
})()

function filled(path: string, rows = 1000) {
  const v = MmapVec.open(path, { a: 'u32' })
  for (let i = 0; i < rows; i++) v.push({ a: i })
  return v
}

test('an Arrow export whose option getter closes the vec is ECLOSED and writes no file', (t) => {
  const v = filled(fresh())
  const file = join(scratch(), 'closed.arrow')
  const options = {
    get batchRows() {
      v.close()
      return 100
    },
  }
  t.throws(() => writeArrowIPCSync(v, file, options), { code: 'ECLOSED' } as object)
  t.false(existsSync(file), 'no Arrow file of 0 rows claims to be the export')
})

test('toArrow whose `from` getter truncates the vec sees the new length (ERANGE), never a table with missing values', (t) => {
  using v = filled(fresh())
  const options = {
    get from() {
      v.truncate(5)
      return 0
    },
    to: 100,
  }
  t.throws(() => toArrow(v, options), { code: 'ERANGE' } as object)
  const table = toArrow(v, { from: 0, to: 5 })
  t.is(table.numRows, 5)
})

test('close reads its options first: a row pushed by the flush getter is kept, a close inside it is harmless', (t) => {
  const path = fresh()
  const v = filled(path, 1)
  v.close({
    get flush() {
      v.push({ a: 7 })
      return true
    },
  })
  using r = MmapVec.open(path, { a: 'u32' })
  t.is(r.length, 2, 'the row pushed before close wrote back is in the files')
  t.deepEqual(r.get(1), { a: 7 })
  r.close()
  const w = MmapVec.open(path, { a: 'u32' })
  t.notThrows(() =>
    w.close({
      get flush() {
        w.close()
        return true
      },
    }),
  )
})

test('open reads each option once', (t) => {
  let reads = 0
  using v = MmapVec.open(fresh(), { a: 'u32' }, {
    get capacity() {
      reads++
      return reads === 1 ? 10 : 1e15
    },
  })
  t.is(reads, 1)
  t.true(v.capacity >= 10 && v.capacity < 1e6)
})

test('fields named like members of Object.prototype are read as the row gives them', (t) => {
  for (const name of ['toString', 'constructor', 'valueOf', '__proto__', 'hasOwnProperty']) {
    using v = MmapVec.temp({ [name]: 'u8', hp: 'u16' })
    v.push(JSON.parse(`{ ${JSON.stringify(name)}: 1, "hp": 2 }`) as never)
    v.set(0, { hp: 5 })
    t.deepEqual(Object.entries(v.get(0) as object), [[name, 1], ['hp', 5]], `${name}: a partial set leaves it alone`)
    const e = t.throws(() => v.push({ hp: 5 }), { code: 'EINVAL' } as object)
    t.regex(e.message, /got undefined/, `${name}: a row without it is refused for the missing field, not for Object.prototype's`)
  }
})

test('a Symbol (or any non-number) index is EINVAL in every row call', (t) => {
  using v = MmapVec.temp({ a: 'u32' })
  v.push({ a: 1 })
  const s = Symbol('i') as unknown as number
  for (const call of [() => v.get(s), () => v.set(s, { a: 2 }), () => v.swapRemove(s), () => v.at(s)]) t.throws(call, { code: 'EINVAL' } as object)
  t.deepEqual(v.get(0), { a: 1 })
})

test('schema is what the vec holds, read once: a getter in the schema, or a change to it after open, changes nothing', (t) => {
  let reads = 0
  const given = {
    get a() {
      return reads++ === 0 ? 'u8' : 'f64'
    },
    b: 'u32',
  } as unknown as { a: 'u8'; b: 'u32' }
  using v = MmapVec.temp(given)
  t.deepEqual(v.schema, { a: 'u8', b: 'u32' })
  t.true(v.columns.a instanceof Uint8Array)
  const plain: Record<string, string> = { x: 'f64' }
  using w = MmapVec.temp(plain as { x: 'f64' })
  plain.x = 'u8'
  t.deepEqual(w.schema, { x: 'f64' })
})

test('truncate(-0) leaves a length of +0', (t) => {
  using v = MmapVec.temp({ a: 'u32' })
  v.push({ a: 1 })
  v.truncate(-0)
  t.true(Object.is(v.length, 0))
})
