// Typed access to fixtures/live-rows.mjs (plain JavaScript, shared with the child processes
// and worker threads of the live-reader suites).
import type { MmapVec } from 'mmapvec'
// @ts-expect-error a plain JavaScript fixture module without types
import * as js from '../fixtures/live-rows.mjs'

export type RowsSchema = { id: 'u32'; x: 'f64'; tick: 'u32'; chk: 'f64' }
type Views = { id: ArrayLike<number>; x: ArrayLike<number>; tick?: ArrayLike<number>; chk?: ArrayLike<number> }

const m = js as {
  Schema: RowsSchema
  MAX_ROWS: number
  xOf: (i: number) => number
  chkOf: (i: number, tick: number) => number
  lengthOf: (tick: number) => number
  badRow: (c: Views, n: number) => number
  snapshotProblem: (s: { length: number; columns: Views }) => string | undefined
  isBug01: (p: string) => boolean
  isBug02: (c: Views, bad: number) => boolean
  writeTick: (v: MmapVec<RowsSchema>, tick: number) => void
}

export const { Schema, MAX_ROWS, xOf, chkOf, lengthOf, badRow, snapshotProblem, isBug01, isBug02, writeTick } = m
