// The ES module entry: the same classes as the CommonJS entry, so `import` and `require`
// share one module instance.
export { MmapVec, MmapVecError } from './index.js'
export type * from './index.js'
