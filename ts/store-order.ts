/**
 * Whether this CPU makes stores visible to other cores in program order (x86's TSO): plain
 * stores then order a unit of writes' begin, its rows and its end as the live readers' sequence
 * lock needs (live.ts, and the generated `set` in codegen.ts). Elsewhere (ARM) JavaScript has
 * no fence, and units begin and end natively, with Rust's fences. `MMAPVEC_STORE_ORDER=weak`
 * takes the native path on x86 too, so that the test suite runs it there (.ci/run).
 */
export const STORES_IN_ORDER: boolean = (process.arch === 'x64' || process.arch === 'ia32') && process.env.MMAPVEC_STORE_ORDER !== 'weak'
