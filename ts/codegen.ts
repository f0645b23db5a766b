/**
 * Per-schema code generation: `push`, `get` and `set` are compiled once per schema layout with
 * `new Function`, so a push is a handful of TypedArray stores with no loop over fields and no
 * allocation, about what hand-written code for that schema costs. What the generated code reads
 * and calls on the vec (`_c0`..., `_len`, `_limit`, `_hdr`, `_spec`, the underscore helpers) is
 * `VecInternals` (internals.ts).
 */
import type { Opening, VecInternals } from './internals.js'
import { STORES_IN_ORDER } from './store-order.js'
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

/**
 * Statements that read the value `v` of column `k` (an expression, evaluated once) into locals
 * `v${k}_0`..., each element read exactly once, and throw EINVAL for a bad one. User code may run
 * here (getters, Proxies, array-likes): nothing is written and no length is read until every
 * value is in a local, so code that changes the vec meanwhile cannot mix rows or lose them.
 * With `optional`, an undefined value is skipped (`set`); `v${k}` then says whether it was given.
 */
function readValue(c: ColumnSpec, k: number, v: string, optional: boolean): string {
  const bad = `throw this._valueError(${k}, v${k});`
  const given = optional ? `v${k} !== undefined && ` : ''
  if (c.count === 1) return `const v${k} = ${v}; if (${given}${typeCheck(c, `v${k}`)}) ${bad}`
  const shape = `(v${k} === null || typeof v${k} !== 'object' || v${k}.length !== ${c.count})`
  if (c.count <= UNROLL) {
    const els = Array.from({ length: c.count }, (_, j) => `v${k}_${j}`)
    const decl = `let ${els.join(', ')};`
    const reads = els.map((e, j) => `${e} = v${k}[${j}];`).join(' ')
    const checks = els.map((e) => typeCheck(c, e)).join(' || ')
    const body = `if (${shape}) ${bad} ${reads} if (${checks}) ${bad}`
    return `const v${k} = ${v}; ${decl} ${optional ? `if (v${k} !== undefined) { ${body} }` : body}`
  }
  // Long arrays: copied (and checked) into a fresh TypedArray, element by element.
  return `const v${k} = ${v}; const t${k} = ${optional ? `v${k} === undefined ? undefined : ` : ''}this._copyArray(${k}, v${k});`
}

/** Statements writing the checked locals of column `k` into `col` at row `i`. */
function writeValue(c: ColumnSpec, k: number, col: string): string {
  if (c.count === 1) return `${col}[i] = ${store(c, `v${k}`)};`
  if (c.count <= UNROLL) {
    const lines = [`{ const c = ${col}, o = i * ${c.count};`]
    for (let j = 0; j < c.count; j++) lines.push(`c[o + ${j}] = ${store(c, `v${k}_${j}`)};`)
    lines.push('}')
    return lines.join(' ')
  }
  return `${col}.set(t${k}, i * ${c.count});`
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

// typeof first: a Symbol (or an object whose valueOf throws) must not be compared.
const INDEX_OK = "(typeof i === 'number' && i >= 0 && i < this._len && Number.isInteger(i))"

/** Source of the class body specialised for `schema`. */
export function classSource(schema: NormalizedSchema): string {
  const cols = schema.columns
  // A field named like a member of Object.prototype (toString, constructor...) is read only as
  // the row's own property: a row without it does not give it the inherited function.
  const val = (k: number) => {
    if (schema.scalar) return 'r'
    const name = JSON.stringify(cols[k].name)
    return cols[k].name in Object.prototype ? `(Object.prototype.hasOwnProperty.call(r, ${name}) ? r[${name}] : undefined)` : `r[${name}]`
  }
  const rowCheck = schema.scalar ? '' : `if (r === null || typeof r !== 'object') throw this._rowError(r);`
  const reads = cols.map((c, k) => readValue(c, k, val(k), false))
  // A getter may also change the schema: this code then no longer matches the columns.
  const sameSchema = 'if (this._spec !== s) throw this._schemaChanged();'
  const push: string[] = [
    'push(r) {',
    'const s = this._spec;',
    rowCheck,
    ...reads,
    sameSchema,
    // The length and the views are read only now, after every getter ran.
    'const i = this._len;',
    'if (i >= this._limit) this._growFor(i + 1);',
    ...cols.map((c, k) => writeValue(c, k, `this._c${k}`)),
    // Published for readers within a millisecond (live.ts): a row below the published count
    // is always written, and a push never touches one.
    'const n = i + 1; this._len = n; this._hdr[0] = n; if (!this._pubDue) this._schedulePublish(); return n;',
    '}',
  ]

  // pushMany of an iterable: each row is read and checked into staging columns `t` at row `i`,
  // then all of them are appended at once.
  const stage: string[] = ['_stageRow(r, t, i) {', rowCheck, ...reads, ...cols.map((c, k) => writeValue(c, k, `t[${k}]`)), '}']

  const loads = cols.map((c, k) => read(c, k))
  const get = [
    'get(i) {',
    `if (!${INDEX_OK}) this._badIndex(i);`,
    ...loads.map(([prelude]) => prelude),
    schema.scalar
      ? `return ${loads[0][1]};`
      : `return { ${cols.map((c, k) => `${key(c.name)}: ${loads[k][1]}`).join(', ')} };`,
    '}',
  ]

  const set: string[] = ['set(i, r) {', `if (!${INDEX_OK}) this._badIndex(i);`, 'if (this._limit < 0) this._notWritable();', 'const s = this._spec;']
  if (schema.scalar) {
    set.push(readValue(cols[0], 0, 'r', false))
  } else {
    set.push(rowCheck, ...cols.map((c, k) => readValue(c, k, val(k), true)))
  }
  // Getters may have shrunk, closed or grown the vec: checked again, and the views read, now.
  set.push('if (i >= this._len) this._badIndex(i);', 'if (this._limit < 0) this._notWritable();', sameSchema)
  // Outside a batch, the row's writes are one unit for readers' snapshots (live.ts): where
  // stores are seen in order, two plain stores of the counter; elsewhere, native calls.
  set.push('const L = this._live, q = this._seqAt, s0 = L[q], solo = (s0 & 1) === 0;')
  set.push(STORES_IN_ORDER ? 'if (solo) L[q] = s0 + 1;' : 'if (solo) this._beginUnit();')
  cols.forEach((c, k) => set.push(`${schema.scalar ? '' : `if (v${k} !== undefined) `}${writeValue(c, k, `this._c${k}`)}`))
  set.push(STORES_IN_ORDER ? 'if (solo) { L[q] = s0 + 2; if (!this._pubDue) this._schedulePublish(); }' : 'if (solo) this._endUnit();', '}')

  return `return class extends Base {\n${push.join('\n')}\n${stage.join('\n')}\n${get.join('\n')}\n${set.join('\n')}\n}`
}

/** A class of vecs: `MmapVec` (vec.ts), or one of the subclasses made here. */
export type VecClass = new (o: Opening) => VecInternals

let base: VecClass | undefined
const cache = new Map<string, VecClass>()

/**
 * vec.ts hands its class over once, as it loads: the modules that make vecs (open.ts) or change
 * their layout (schema-change.ts) cannot import vec.ts, which imports them.
 */
export function setBaseClass(Base: VecClass): void {
  base = Base
}

/** The subclass of the vec class specialised for `schema`, made once per layout. */
export function specialise(schema: NormalizedSchema): VecClass {
  const id = JSON.stringify(schema)
  let cls = cache.get(id)
  if (cls === undefined) {
    if (base === undefined) throw new Error('mmapvec: vec.ts was not loaded (import the package entry, not its modules)')
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the whole point: code compiled per schema layout
    const make = new Function('Base', classSource(schema)) as (base: VecClass) => VecClass
    cls = make(base)
    cache.set(id, cls)
  }
  return cls
}
