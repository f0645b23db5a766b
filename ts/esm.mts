// The ES module entry: the same classes as the CommonJS entry, so `import` and `require`
// share one module instance.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { toArrowWith } from './arrow/export.js'
import { missingArrow, type ArrowTable, type ToArrowOptions } from './arrow/types.js'
import type { MmapVec, Schema } from './index.js'

export { MmapVec, MmapVecError, fromArrowIPC, writeArrowIPC, writeArrowIPCSync } from './index.js'
export type * from './index.js'

type ArrowModule = NonNullable<ToArrowOptions['arrow']>
let arrowCache: ArrowModule | undefined

/**
 * apache-arrow as this program's `import` sees it (its ES module build). Tables of its CommonJS
 * and ES module builds do not mix (one's IPC writer cannot write the other's tables), so the
 * Table that `toArrow` returns here is built with the ES module one, loaded synchronously with
 * `require(esm)` (Node 20.19 and later). Where that is missing, the CommonJS build is used; a
 * loader that compiles what `require` loads (tsx) makes a copy of its own; the `arrow` option
 * says which module to use then.
 */
function arrowForImport(): ArrowModule {
  if (arrowCache !== undefined) return arrowCache
  let url: string
  try {
    url = import.meta.resolve('apache-arrow')
  } catch {
    throw missingArrow()
  }
  const req = createRequire(import.meta.url)
  try {
    arrowCache = req(fileURLToPath(url)) as ArrowModule
  } catch (err) {
    if ((err as NodeJS.ErrnoException)?.code !== 'ERR_REQUIRE_ESM') throw err
    arrowCache = req('apache-arrow') as ArrowModule
  }
  return arrowCache
}

/** See the CommonJS entry's `toArrow`: the same, with apache-arrow's ES module build. */
export function toArrow<S extends Schema>(vec: MmapVec<S>, options?: ToArrowOptions): ArrowTable {
  return toArrowWith(arrowForImport, vec, options)
}
