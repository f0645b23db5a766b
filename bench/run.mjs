// `npm run bench` (full) or `npm run bench -- --quick` (under a minute): runs every scenario in
// a process of its own, then prints one table of absolute rates and ratios against the
// baselines measured in the same run. `--markdown FILE` also writes the table as Markdown.
import { execSync, spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { dataDir, quick } from './lib.mjs'

const scenarios = ['push', 'access', 'live', 'open-flush', 'pause', 'memory', 'rust']
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',')
const mdIndex = process.argv.indexOf('--markdown')
const markdownFile = mdIndex > 0 ? process.argv[mdIndex + 1] : undefined

function sh(cmd) {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model
const fsType = sh(`df -T "${dataDir}" | tail -1 | awk '{print $2 " (" $1 ")"}'`)
const machine = [
  `CPU: ${cpu}, ${os.cpus().length} cores`,
  `memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  `disk: ${fsType} at ${dataDir}`,
  `kernel: ${os.release()}`,
  `Node ${process.version}, ${sh('rustc --version')}`,
  `mode: ${quick ? 'quick' : 'full'}, ${new Date().toISOString().slice(0, 10)}`,
]

const rows = []
for (const s of scenarios) {
  if (only && !only.includes(s)) continue
  const started = Date.now()
  process.stderr.write(`running ${s}... `)
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(new URL(`./scenarios/${s}.mjs`, import.meta.url)), ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  })
  process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  if (r.status !== 0) throw new Error(`scenario ${s} failed (${r.status ?? r.signal})`)
  rows.push(...JSON.parse(r.stdout.trim().split('\n').at(-1)).rows)
}
rmSync(dataDir, { recursive: true, force: true })

function fmt(v, unit) {
  if (unit === 'rows/s') return `${(v / 1e6).toFixed(2)} M rows/s`
  if (unit === 'B/s') return `${(v / 1e9).toFixed(2)} GB/s`
  if (unit === 'B') return `${(v / 2 ** 20).toFixed(1)} MiB`
  if (unit === 's' && v < 1e-6) return `${(v * 1e9).toFixed(1)} ns`
  if (unit === 's') return v < 1e-3 ? `${(v * 1e6).toFixed(1)} µs` : v < 1 ? `${(v * 1e3).toFixed(2)} ms` : `${v.toFixed(2)} s`
  return `${v} ${unit}`
}

// Each scenario's first row is ours; every baseline after it is compared with the ours before it.
const table = [['scenario', 'measured', 'result', 'ours / baseline', 'target', 'met']]
let ours
for (const r of rows) {
  let ratio = ''
  let target = ''
  let met = ''
  if (!r.baseline) {
    ours = r
    if (r.absoluteTarget !== undefined) {
      target = `${r.lowerIsBetter ? '<' : '>='} ${fmt(r.absoluteTarget, r.unit === 'B/s' ? 'B/s' : r.unit)}`
      met = (r.lowerIsBetter ? r.value < r.absoluteTarget : r.value >= r.absoluteTarget) ? 'yes' : 'NO'
    }
  } else if (ours) {
    // For times, lower is better: the ratio is baseline time / our time (how many times faster).
    const x = ours.lowerIsBetter ? r.value / ours.value : ours.value / r.value
    ratio = `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x${ours.lowerIsBetter ? ' faster' : ''}`
    if (r.target !== undefined) {
      target = `>= ${r.target}x`
      met = x >= r.target ? 'yes' : 'NO'
    }
  }
  table.push([r.scenario, r.subject + (r.note ? ` (${r.note})` : ''), fmt(r.value, r.unit), ratio, target, met])
}

const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)))
console.log(machine.join('\n'))
console.log()
for (const row of table) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '))

if (markdownFile) {
  const md = [
    ...machine.map((m) => `- ${m}`),
    '',
    `| ${table[0].join(' | ')} |`,
    `| ${table[0].map(() => '---').join(' | ')} |`,
    ...table.slice(1).map((row) => `| ${row.join(' | ')} |`),
    '',
  ].join('\n')
  writeFileSync(markdownFile, md)
  console.log(`\nwrote ${markdownFile}`)
}
