// Compile-time tests of the types inferred from a schema. `npm run test:types` compiles this
// file; every `@ts-expect-error` line must be an error, or the compile fails.
import { MmapVec, type ColumnsOf, type ErrorCode, type RowOf, type Schema } from 'mmapvec'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const is = <T extends true>(_: T) => undefined

const Particle = { pos: ['f32', 3], vel: ['f32', 3], id: 'u32', alive: 'bool', big: 'u64' } as const
declare const v: MmapVec<typeof Particle>

// Rows and columns follow the schema.
is<Equal<ReturnType<typeof v.get>, { pos: number[]; vel: number[]; id: number; alive: boolean; big: bigint }>>(true)
is<Equal<typeof v.columns.pos, Float32Array>>(true)
is<Equal<typeof v.columns.id, Uint32Array>>(true)
is<Equal<typeof v.columns.alive, Uint8Array>>(true)
is<Equal<typeof v.columns.big, BigUint64Array>>(true)
is<Equal<RowOf<typeof Particle>['id'], number>>(true)
is<Equal<ColumnsOf<typeof Particle>['vel'], Float32Array>>(true)
const id: number = v.get(0).id
void id

v.push({ pos: [0, 1, 2], vel: new Float32Array(3), id: 7, alive: true, big: 1n })
// @ts-expect-error a missing field does not compile
v.push({ pos: [0, 1, 2], vel: [1, 0, 0], id: 7, alive: true })
// @ts-expect-error a wrongly typed field does not compile
v.push({ pos: [0, 1, 2], vel: [1, 0, 0], id: '7', alive: true, big: 1n })
// @ts-expect-error a number where a bigint belongs does not compile
v.push({ pos: [0, 1, 2], vel: [1, 0, 0], id: 7, alive: true, big: 1 })
v.set(0, { alive: false })
// @ts-expect-error an unknown field does not compile
v.set(0, { alvie: false })

// The schema's literal types are inferred without `as const`.
const w = MmapVec.open('w', { xy: ['f64', 2], n: 'i16' })
is<Equal<typeof w.columns.xy, Float64Array>>(true)
is<Equal<ReturnType<typeof w.get>, { xy: number[]; n: number }>>(true)

// Scalar vecs hold plain values.
const s = MmapVec.open('s', 'f64')
is<Equal<typeof s.values, Float64Array>>(true)
is<Equal<ReturnType<typeof s.get>, number>>(true)
s.push(1.5)
// @ts-expect-error a scalar vec takes plain values
s.push({ value: 1.5 })
const triples = MmapVec.open('t', ['f32', 3])
triples.pushMany(new Float32Array(6))
triples.pushMany([[1, 2, 3]])
// @ts-expect-error a plain array of numbers is a list of rows here, not a column
triples.pushMany([1, 2, 3])
const b = MmapVec.temp('i64')
is<Equal<ReturnType<typeof b.get>, bigint>>(true)

// Schema changes return the vec retyped.
const hp = v.addColumn('hp', 'u16')
is<Equal<ReturnType<typeof hp.get>, { pos: number[]; vel: number[]; id: number; alive: boolean; big: bigint; hp: number }>>(true)
is<Equal<typeof hp.columns.hp, Uint16Array>>(true)
hp.push({ pos: [0, 1, 2], vel: [1, 0, 0], id: 7, alive: true, big: 1n, hp: 3 })
// @ts-expect-error the new field is required in a push
hp.push({ pos: [0, 1, 2], vel: [1, 0, 0], id: 7, alive: true, big: 1n })
const arr = w.addColumn('tags', ['u64', 2])
is<Equal<ReturnType<typeof arr.get>, { xy: number[]; n: number; tags: bigint[] }>>(true)
is<Equal<typeof arr.columns.tags, BigUint64Array>>(true)
const dropped = hp.dropColumn('vel')
is<Equal<ReturnType<typeof dropped.get>, { pos: number[]; id: number; alive: boolean; big: bigint; hp: number }>>(true)
// @ts-expect-error a dropped field is gone from rows
dropped.get(0).vel
// @ts-expect-error only existing fields can be dropped
hp.dropColumn('nope')
const renamed = dropped.renameColumn('hp', 'health')
is<Equal<ReturnType<typeof renamed.get>, { pos: number[]; id: number; alive: boolean; big: bigint; health: number }>>(true)
is<Equal<typeof renamed.columns.health, Uint16Array>>(true)
// @ts-expect-error only existing fields can be renamed
dropped.renameColumn('nope', 'x')
// @ts-expect-error not a field type
w.addColumn('bad', 'f16')
// @ts-expect-error a vec of plain values has no named fields to drop
s.dropColumn('value')

const code: ErrorCode = 'ELOCKED'
// @ts-expect-error not an error code
const bad: ErrorCode = 'ENOPE'
void code
void bad
const schema: Schema = { a: 'u8' }
void schema
export {}

// Without a schema, a vec has the stored one, known only at run time; inspect and verify are typed.
is<Equal<ReturnType<typeof MmapVec.open<typeof Particle>>, MmapVec<typeof Particle>>>(true)
declare const anyPath: string
const stored = MmapVec.open(anyPath, undefined, { readOnly: true })
is<Equal<typeof stored, MmapVec<Schema>>>(true)
is<Equal<ReturnType<typeof MmapVec.inspect>['lock'], 'none' | 'shared' | 'exclusive'>>(true)
is<Equal<ReturnType<typeof MmapVec.verify>[number]['code'], ErrorCode>>(true)
// @ts-expect-error a schema's type is checked even when the schema is optional
MmapVec.open(anyPath, { x: 'f16' })
