#!/usr/bin/env node
// Type-checks and lints the Rust code (core and binding) for every platform the package ships
// (package.json's napi.targets) whose Rust standard library is installed: `cargo clippy
// --target <t> -- -D warnings`, which compiles each platform's `cfg` branches without
// linking, so no linker or SDK of that platform is needed. It proves the code builds there,
// not that it runs.
//
//   node scripts/check-targets.mjs            check the installed targets, list the others
//   node scripts/check-targets.mjs --install  first `rustup target add` the missing ones; if
//                                             that fails (no access to rustup's server), say
//                                             so and check what is installed
//   node scripts/check-targets.mjs --per-os   one target per OS and C library (the code's cfg
//                                             branches differ by those, not by CPU), for CI's
//                                             time budget
//
// Exits 1 when a check fails; targets that are not installed are reported, not failures.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const allTargets = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).napi.targets
const install = process.argv.includes('--install')
const perOs = process.argv.includes('--per-os')

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts })
}

function installed(host) {
  const r = run('rustup', ['target', 'list', '--installed'])
  if (r.status === 0) return new Set(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean))
  // Without rustup, only the host's standard library is there.
  console.log('rustup is not available: only the host\'s standard library is installed')
  return new Set(host ? [host] : [])
}

// The host is what `npm run lint` checks; checking it again here would only repeat that.
const host = /^host: (.+)$/m.exec(run('rustc', ['-vV']).stdout ?? '')?.[1]

// `x86_64-pc-windows-msvc` -> `pc-windows-msvc`: what the cfg branches depend on.
const family = (t) => t.split('-').slice(1).join('-')
const targets = perOs
  ? allTargets.filter((t, i) => family(t) !== family(host ?? '') && allTargets.findIndex((u) => family(u) === family(t)) === i)
  : allTargets
if (perOs) console.log(`--per-os: checking ${targets.join(', ')} (one per OS and C library; the host's is checked by npm run lint)`)

let have = installed(host)
const missing = targets.filter((t) => t !== host && !have.has(t))
if (install && missing.length > 0) {
  console.log(`rustup target add ${missing.join(' ')}`)
  const r = run('rustup', ['target', 'add', ...missing], { stdio: 'inherit' })
  if (r.status !== 0) {
    console.log(
      'NOTICE: could not install these targets (no access to rustup\'s server?); ' +
        'checking only the installed ones',
    )
  }
  have = installed(host)
}

const results = []
for (const t of targets) {
  if (t === host) {
    results.push([t, 'the host: npm run lint checks it'])
    continue
  }
  if (!have.has(t)) {
    results.push([t, 'not installed (rustup target add ' + t + ')'])
    continue
  }
  const start = Date.now()
  console.log(`\n== cargo clippy --workspace --all-targets --all-features --target ${t}`)
  // musl links the C runtime statically by default, which rules out a cdylib (cargo would drop
  // the binding crate's only crate type and check nothing of it); napi-rs builds musl addons
  // with `-crt-static`, so the check does the same.
  const env = { ...process.env }
  if (t.endsWith('-musl')) {
    const key = `CARGO_TARGET_${t.toUpperCase().replaceAll('-', '_')}_RUSTFLAGS`
    env[key] = [env[key], '-C target-feature=-crt-static'].filter(Boolean).join(' ')
  }
  const r = run(
    'cargo',
    ['clippy', '--workspace', '--all-targets', '--all-features', '--target', t, '--', '-D', 'warnings'],
    { stdio: 'inherit', env },
  )
  const secs = ((Date.now() - start) / 1000).toFixed(1)
  results.push([t, r.status === 0 ? `checked (${secs} s)` : `FAILED (${secs} s)`])
}

console.log('\nTargets (package.json napi.targets):')
for (const [t, what] of results) console.log(`  ${t.padEnd(28)} ${what}`)
console.log('Checked means it compiles and is clippy-clean there; nothing was linked or run.')
process.exit(results.some(([, what]) => what.startsWith('FAILED')) ? 1 : 0)
