/**
 * Per-schema code generation: `push`, `get` and `set` are compiled once per schema layout with
 * `new Function`, so a push is a handful of TypedArray stores with no loop over fields and no
 * allocation, about what hand-written code for that schema costs.
 */
import type { ColumnSpec, NormalizedSchema } from './schema.js'

/** Arrays up to this long are unrolled in the generated code. */
const UNROLL = 16

function key(name: string): string {
  // A quoted "__proto__" key in an object literal would set the prototype; a computed one does not.
  return name === '__proto__' ? `[${JSON.stringify(name)}]` : JSON.stringify(name)
}

function typeCheck(c: ColumnSpec, v: string): string {
  switch (c.type) {
    case 'i64':
    case 'u64':
      return `typeof ${v} !== 'bigint'`
    case 'bool':
      return `typeof ${v} !== 'boolean'`
    default:
      return `typeof ${v} !== 'number'`
  }
}

function store(c: ColumnSpec, v: string): string {
  return c.type === 'bool' ? `(${v} ? 1 : 0)` : v
}

function load(c: ColumnSpec, col: string, idx: string): string {
  return c.type === 'bool' ? `${col}[${idx}] !== 0` : `${col}[${idx}]`
}

/** Code that checks value `v` of column `k` (index `i` is in scope) and evaluates to true if bad. */
function badValue(c: ColumnSpec, v: string): string {
  if (c.count === 1) return typeCheck(c, v)
  if (c.count <= UNROLL) {
    const els = Array.from({ length: c.count }, (_, j) => typeCheck(c, `${v}[${j}]`))
    return `(${v} === null || typeof ${v} !== 'object' || ${v}.length !== ${c.count} || ${els.join(' || ')})`
  }
  return `(${v} === null || typeof ${v} !== 'object' || ${v}.length !== ${c.count} || this._badElements(${v}, ${JSON.stringify(c.type)}))`
}

/** Statements writing checked value `v` of column `k` at row `i`. */
function write(c: ColumnSpec, k: number, v: string): string {
  const col = `this._c${k}`
  if (c.count === 1) return `${col}[i] = ${store(c, v)};`
  if (c.count <= UNROLL) {
    const lines = [`{ const c = ${col}, o = i * ${c.count};`]
    for (let j = 0; j < c.count; j++) lines.push(`c[o + ${j}] = ${store(c, `${v}[${j}]`)};`)
    lines.push('}')
    return lines.join(' ')
  }
  return `{ const c = ${col}, o = i * ${c.count}; for (let j = 0; j < ${c.count}; j++) c[o + j] = ${store(c, `${v}[j]`)}; }`
}

/** A statement to run first (or '') and the expression reading column `k` at row `i`. */
function read(c: ColumnSpec, k: number): [string, string] {
  const col = `this._c${k}`
  if (c.count === 1) return ['', load(c, col, 'i')]
  const prelude = `const c${k} = ${col}, o${k} = i * ${c.count};`
  if (c.count <= UNROLL) {
    const els = Array.from({ length: c.count }, (_, j) => load(c, `c${k}`, `o${k} + ${j}`))
    return [prelude, `[${els.join(', ')}]`]
  }
  return [prelude, `this._readArray(c${k}, o${k}, ${c.count}, ${c.type === 'bool'})`]
}

const INDEX_OK = '(i >= 0 && i < this._len && Number.isInteger(i))'

/** Source of the class body specialised for `schema`. */
export function classSource(schema: NormalizedSchema): string {
  const cols = schema.columns
  const val = (k: number) => (schema.scalar ? 'r' : `r[${JSON.stringify(cols[k].name)}]`)
  const push: string[] = [
    'push(r) {',
    'const i = this._len;',
    'if (i >= this._limit) this._growFor(i + 1);',
  ]
  if (!schema.scalar) push.push(`if (r === null || typeof r !== 'object') throw this._rowError(r);`)
  cols.forEach((c, k) => {
    push.push(`{ const v = ${val(k)}; if (${badValue(c, 'v')}) throw this._valueError(${k}, v); ${write(c, k, 'v')} }`)
  })
  push.push('const n = i + 1; this._len = n; this._hdr[0] = n; return n;', '}')

  const reads = cols.map((c, k) => read(c, k))
  const get = [
    'get(i) {',
    `if (!${INDEX_OK}) this._badIndex(i);`,
    ...reads.map(([prelude]) => prelude),
    schema.scalar
      ? `return ${reads[0][1]};`
      : `return { ${cols.map((c, k) => `${key(c.name)}: ${reads[k][1]}`).join(', ')} };`,
    '}',
  ]

  const set: string[] = ['set(i, r) {', `if (!${INDEX_OK}) this._badIndex(i);`, 'if (this._limit < 0) this._notWritable();']
  if (schema.scalar) {
    set.push(`if (${badValue(cols[0], 'r')}) throw this._valueError(0, r);`, write(cols[0], 0, 'r'))
  } else {
    set.push(`if (r === null || typeof r !== 'object') throw this._rowError(r);`)
    cols.forEach((c, k) => {
      set.push(`const v${k} = ${val(k)}; if (v${k} !== undefined && ${badValue(c, `v${k}`)}) throw this._valueError(${k}, v${k});`)
    })
    cols.forEach((c, k) => set.push(`if (v${k} !== undefined) ${write(c, k, `v${k}`)}`))
  }
  set.push('}')

  return `return class extends Base {\n${push.join('\n')}\n${get.join('\n')}\n${set.join('\n')}\n}`
}

const cache = new Map<string, unknown>()

/** The subclass of `Base` specialised for `schema`, made once per layout. */
export function specialise<B extends abstract new (...args: never[]) => unknown>(Base: B, schema: NormalizedSchema): B {
  const id = JSON.stringify(schema)
  let cls = cache.get(id)
  if (cls === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the whole point: code compiled per schema layout
    const make = new Function('Base', classSource(schema)) as (base: B) => B
    cls = make(Base)
    cache.set(id, cls)
  }
  return cls as B
}
