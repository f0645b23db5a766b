import { MmapVec } from '/work/adv6/dist/esm.mjs'
const dir = process.argv[2], variant = process.argv[3]
const v = MmapVec.open(dir, { a: 'u32' }, { mode: 'buffered' })
for (let i = 0; i < 1000; i++) v.push({ a: i })
if (variant === 'throw') { process.on('exit', () => { throw new Error('boom in listener') }) ; setTimeout(()=>{},10)}
if (variant === 'uncaught') { setTimeout(() => { throw new Error('boom') }, 10) }
if (variant === 'exitcode') { process.exitCode = 3 }
if (variant === 'once') { process.once('exit', () => { v.push({ a: 1000 }) }) ; setTimeout(()=>{},10)}
if (variant === 'prepend') { setTimeout(() => process.prependListener('exit', () => { v.push({ a: 1000 }) }), 5) }
if (variant === 'beforeExit') { process.on('beforeExit', () => { v.push({ a: 1000 }) ; }) }
if (variant === 'rejection') { Promise.reject(new Error('unhandled')) }
if (variant === 'abortexit') { setTimeout(() => { v.push({ a: 1000 }); process.exit(0) }, 10) }
if (variant === 'kill') { setTimeout(() => process.kill(process.pid, 'SIGTERM'), 10) }
