/**
 * Schema changes of an open vec: the bodies of `addColumn`, `dropColumn` and `renameColumn`,
 * their checks and messages, and what follows a change (the per-schema code regenerated, the
 * views taken again). The native layer makes the change atomic on disk (docs/DESIGN.md).
 */
import { MAX_COLUMNS, MAX_NAME_BYTES, type Layout } from '../native/binding.js'
import { specialise } from './codegen.js'
import { MmapVecError, callNative, invalid } from './errors.js'
import type { VecInternals } from './internals.js'
import { field, notUnicode, notUnicodeMessage, storedOrder, type ColumnSpec, type FieldType, type NormalizedSchema, type Schema } from './schema.js'


function checkName(name: unknown, method: string, what: string, path: string): void {
  if (typeof name !== 'string' || name === '') {
    throw invalid(`${path}: ${method}: ${what} must be a non-empty string, got ${typeof name === 'string' ? "''" : String(name)}`, path)
  }
  if (notUnicode(name)) throw invalid(`${path}: ${method}: ${notUnicodeMessage(what, name)}`, path)
  // Checked here as well as in the core so that a refused call fails before buffered mode
  // writes anything back.
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw invalid(`${path}: ${method}: field name '${name.slice(0, 32)}...' is longer than ${MAX_NAME_BYTES} bytes`, path)
  }
}

/** Throws unless the vec is open, writable and of fields (a vec of plain values has no columns to change). */
function changeable(vec: VecInternals, what: string): void {
  vec._writable()
  if (vec._spec.scalar) {
    throw new MmapVecError(
      'ESCHEMA',
      `${vec._path}: ${what}: this is a vec of plain values, which has no named columns; schema changes apply to vecs of fields. Copy the rows into a new vec with fields instead`,
      vec._path,
    )
  }
}

function has(vec: VecInternals, name: string): boolean {
  return vec._spec.columns.some((c) => c.name === name)
}

function noColumn(vec: VecInternals, method: string, name: string): MmapVecError {
  const names = vec._spec.columns.map((c) => `'${c.name}'`).join(', ')
  return new MmapVecError('ESCHEMA', `${vec._path}: ${method}: the vec has no column '${name}'; its columns are ${names}`, vec._path)
}

function taken(vec: VecInternals, method: string, name: string, fix: string): MmapVecError {
  return new MmapVecError('ESCHEMA', `${vec._path}: ${method}: the vec already has a column '${name}'; choose another name, or ${fix}`, vec._path)
}

/** The body of `MmapVec.addColumn`. */
export function addColumn(vec: VecInternals, name: string, type: FieldType): void {
  changeable(vec, 'addColumn')
  checkName(name, 'addColumn', 'the column name', vec._path)
  const c = field(name, type)
  if (typeof c === 'string') throw invalid(`${vec._path}: addColumn: field '${name}': ${c}`, vec._path)
  if (has(vec, name)) throw taken(vec, 'addColumn', name, `drop that column first with vec.dropColumn('${name}')`)
  if (vec._spec.columns.length >= MAX_COLUMNS) {
    throw invalid(`${vec._path}: addColumn: the vec has ${MAX_COLUMNS} fields, the most a vec may have`, vec._path)
  }
  const kept = vec._spec.columns.map((_, k) => k)
  const copy: FieldType = typeof type === 'string' ? type : [c.type, c.count]
  change(
    vec,
    () => vec._native.addColumn(name, c.type, c.count),
    Object.fromEntries([...Object.entries(vec._schema), [name, copy]]),
    [...vec._spec.columns, c],
    [...kept, -1],
  )
}

/** The body of `MmapVec.dropColumn`. */
export function dropColumn(vec: VecInternals, name: string): void {
  changeable(vec, 'dropColumn')
  checkName(name, 'dropColumn', 'the column name', vec._path)
  const k = vec._spec.columns.findIndex((c) => c.name === name)
  if (k < 0) throw noColumn(vec, 'dropColumn', name)
  if (vec._spec.columns.length === 1) {
    throw new MmapVecError(
      'ESCHEMA',
      `${vec._path}: dropColumn: '${name}' is the vec's only column, and a vec has at least one; add another column first, or delete the whole vec with MmapVec.remove`,
      vec._path,
    )
  }
  const kept = vec._spec.columns.map((_, j) => j).filter((j) => j !== k)
  change(
    vec,
    () => vec._native.dropColumn(name),
    Object.fromEntries(Object.entries(vec._schema).filter(([n]) => n !== name)),
    kept.map((j) => vec._spec.columns[j]),
    kept,
  )
}

/** The body of `MmapVec.renameColumn`. */
export function renameColumn(vec: VecInternals, from: string, to: string): void {
  changeable(vec, 'renameColumn')
  checkName(from, 'renameColumn', 'the old name', vec._path)
  checkName(to, 'renameColumn', 'the new name', vec._path)
  if (!has(vec, from)) throw noColumn(vec, 'renameColumn', from)
  if (from === to) return
  if (has(vec, to)) throw taken(vec, 'renameColumn', to, `drop it first with vec.dropColumn('${to}')`)
  change(
    vec,
    () => vec._native.renameColumn(from, to),
    Object.fromEntries(Object.entries(vec._schema).map(([n, t]) => [n === from ? to : n, t])),
    vec._spec.columns.map((c) => (c.name === from ? { ...c, name: to } : c)),
    vec._spec.columns.map((_, k) => k),
  )
}

/**
 * Runs a native schema change and takes on what it left: the new schema (`schema`, `columns`,
 * and `from[k]`, the old position of new column `k` or -1 for a new one) when the stored schema
 * changed, even if the call then failed (making it durable), else nothing.
 */
function change(vec: VecInternals, call: () => Layout, schema: Record<string, FieldType>, columns: ColumnSpec[], from: number[]): void {
  // Buffered columns go to the files first: the change makes everything before it durable.
  vec._storage.writeBack(vec)
  const spec: NormalizedSchema = { scalar: false, columns }
  // What the new schema needs in memory (buffered mode: the new column's buffer) is made
  // first: failing for want of memory, the change is refused before the files change.
  const prepared = vec._storage.prepare(vec, spec, from)
  let layout: Layout | undefined
  try {
    layout = callNative(vec._path, call)
  } finally {
    // A change can fail after its commit point (making it durable): what the files hold then
    // says whether the new schema is in place.
    layout ??= afterFailure(vec)
    if (layout !== undefined && inPlace(spec, layout)) follow(vec, () => reshape(vec, schema, spec, from, layout!, prepared))
    else if (layout !== undefined && !inPlace(vec._spec, layout)) follow(vec, () => {
      throw new MmapVecError('EIO', `${vec._path}: the vec's files no longer hold the schema this handle shows; it was closed so that nothing is written into the wrong column. Open it again`, vec._path)
    })
  }
}

/**
 * Runs `take` (taking on what the files hold now); if it fails, the vec closes without writing
 * back (the change wrote everything back before it began), so that views and column positions
 * that no longer match the files can write nothing into the wrong column.
 */
function follow(vec: VecInternals, take: () => void): void {
  try {
    take()
  } catch (e) {
    vec._storage.release(vec)
    try {
      vec.close({ flush: false })
    } catch {
      // The native vec is closed already: the facade's state is what remains.
    }
    throw e
  }
}

/** The vec's layout after a failed change, unless it cannot be read (the vec is damaged). */
function afterFailure(vec: VecInternals): Layout | undefined {
  try {
    return vec._native.layout()
  } catch {
    return undefined
  }
}

/** Whether the stored columns are exactly `spec`'s fields. */
function inPlace(spec: NormalizedSchema, layout: Layout): boolean {
  return layout.columns.length === spec.columns.length && storedOrder(spec, layout.columns).every((i) => i >= 0)
}

/**
 * Regenerates the per-schema code and the views after a schema change. The native layer has
 * detached the views of a dropped column and of the replaced header already.
 */
function reshape(vec: VecInternals, schema: Schema, spec: NormalizedSchema, from: number[], layout: Layout, prepared: unknown): void {
  vec._schema = schema
  vec._spec = spec
  vec._stored = storedOrder(spec, layout.columns)
  Object.setPrototypeOf(vec, specialise(spec).prototype as object)
  vec._storage.reshape(vec, from, layout, prepared)
  vec._columnsCache = undefined
}
