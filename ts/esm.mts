// The ES module entry: the same classes as the CommonJS entry, so `import` and `require`
// share one module instance.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { missingArrow, toArrowWith, type ArrowTable, type RowRange } from './arrow.js'
import type { MmapVec, Schema } from './index.js'

export { MmapVec, MmapVecError, fromArrowIPC, writeArrowIPC, writeArrowIPCSync } from './index.js'
export type * from './index.js'

let arrowCache: Parameters<typeof toArrowWith>[0] | undefined

/**
 * apache-arrow as this program's `import` sees it (its ES module build). Tables of its CommonJS
 * and ES module builds do not mix (one's IPC writer cannot write the other's tables), so the
 * Table that `toArrow` returns here is built with the ES module one, loaded synchronously with
 * `require(esm)` (Node 20.19 and later). Where that is missing, the CommonJS build is used.
 */
function arrowForImport(): Parameters<typeof toArrowWith>[0] {
  if (arrowCache !== undefined) return arrowCache
  let url: string
  try {
    url = import.meta.resolve('apache-arrow')
  } catch {
    throw missingArrow()
  }
  const req = createRequire(import.meta.url)
  try {
    arrowCache = req(fileURLToPath(url))
  } catch (err) {
    if ((err as NodeJS.ErrnoException)?.code !== 'ERR_REQUIRE_ESM') throw err
    arrowCache = req('apache-arrow')
  }
  return arrowCache!
}

/** See the CommonJS entry's `toArrow`: the same, with apache-arrow's ES module build. */
export function toArrow<S extends Schema>(vec: MmapVec<S>, range?: RowRange): ArrowTable {
  return toArrowWith(arrowForImport(), vec, range)
}
