// Proves that installing the packed packages works without a compiler: packs the main package
// and the linux-x64-gnu platform package with `npm pack`, installs both tarballs into a fresh
// project whose PATH has no cargo or rustc, and opens, pushes, closes, reopens and checks rows
// there, with `import` and with `require`, and runs `npx mmapvec info` from the installed bin.
// Also checks that the main package ships no Rust sources, tests, examples or build output. Run by
// .ci/run (`npm run test:pack`).
import { execFileSync } from 'node:child_process'
import { accessSync, constants, copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const platform = 'linux-x64-gnu'
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts })
const fail = (msg) => {
  console.error(`pack-install-test: ${msg}`)
  process.exit(1)
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`pack-install-test: only ${platform} is built here; skipped on ${process.platform}-${process.arch}`)
  process.exit(0)
}

// 1. What the main package ships.
const listing = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']))[0].files.map((f) => f.path)
const forbidden = listing.filter((p) => /\.rs$|^crates\/|^src\/|^__test__\/|^target\/|\.node$|^bench\/|^examples\/|^Cargo\./.test(p))
if (forbidden.length > 0) fail(`the main package would ship ${forbidden.join(', ')}`)
for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/esm.mjs', 'dist/cli/bin.js', 'dist/cli/main.js', 'native/binding.js', 'package.json', 'README.md']) {
  if (!listing.includes(needed)) fail(`the main package lacks ${needed}`)
}
console.log(`main package: ${listing.length} files, no Rust sources, tests, examples or build output`)

// 2. The tarballs: the main package, and the platform package napi generates, holding the addon.
const stage = mkdtempSync(join(tmpdir(), 'mmapvec-pack-'))
process.on('exit', () => rmSync(stage, { recursive: true, force: true }))
rmSync(join(root, 'npm'), { recursive: true, force: true })
run('npx', ['napi', 'create-npm-dirs'])
copyFileSync(join(root, 'native', `mmapvec.${platform}.node`), join(root, 'npm', platform, `mmapvec.${platform}.node`))
const mainTgz = join(stage, run('npm', ['pack', '--ignore-scripts', '--pack-destination', stage]).trim().split('\n').at(-1))
const platformTgz = join(stage, run('npm', ['pack', '--pack-destination', stage], { cwd: join(root, 'npm', platform) }).trim().split('\n').at(-1))
rmSync(join(root, 'npm'), { recursive: true, force: true })

// 3. A fresh project whose PATH has no Rust toolchain.
const hasTool = (dir) =>
  ['cargo', 'rustc'].some((t) => {
    try {
      accessSync(join(dir, t), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
const path = (process.env.PATH ?? '').split(delimiter).filter((d) => d && !hasTool(d)).join(delimiter)
const env = { ...process.env, PATH: path }
delete env.CARGO
delete env.RUSTUP_HOME
delete env.CARGO_HOME
const app = join(stage, 'app')
run('mkdir', ['-p', app])
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
try {
  execFileSync('sh', ['-c', 'command -v cargo || command -v rustc'], { env, stdio: 'pipe' })
  fail('cargo or rustc is still on the PATH of the test project')
} catch {
  // Neither is found: good.
}
run('npm', ['install', '--no-audit', '--no-fund', mainTgz, platformTgz], { cwd: app, env })
const shipped = readdirSync(join(app, 'node_modules', 'mmapvec', 'native'))
if (shipped.some((f) => f.endsWith('.node'))) fail('the main package carried a .node file')

const check = (i) => `if (JSON.stringify(v.get(${i})) !== JSON.stringify({ pos: [${i}, ${i + 1}, ${i + 2}], id: ${i}, big: '${i}n', ok: ${i % 2 === 0} })) throw new Error('row ${i}')`
const body = (kind) => `
const schema = { pos: ['f32', 3], id: 'u32', big: 'i64', ok: 'bool' }
const path = 'data-${kind}.mvec'
let v = MmapVec.open(path, schema)
for (let i = 0; i < 1000; i++) v.push({ pos: [i, i + 1, i + 2], id: i, big: BigInt(i), ok: i % 2 === 0 })
v.close()
v = MmapVec.open(path, schema, { readOnly: true })
const toJSON = BigInt.prototype.toJSON
BigInt.prototype.toJSON = function () { return this.toString() + 'n' }
if (v.length !== 1000) throw new Error('length ' + v.length)
${check(0)}
${check(999)}
BigInt.prototype.toJSON = toJSON
v.close()
console.log('${kind}: 1000 rows pushed, reopened and checked')
`
writeFileSync(join(app, 'esm.mjs'), `import { MmapVec } from 'mmapvec'\n${body('import')}`)
writeFileSync(join(app, 'cjs.cjs'), `const { MmapVec } = require('mmapvec')\n${body('require')}`)
process.stdout.write(run(process.execPath, ['esm.mjs'], { cwd: app, env }))
process.stdout.write(run(process.execPath, ['cjs.cjs'], { cwd: app, env }))
// The command: `npx mmapvec info` on a vec the scripts above made, from the installed bin.
const info = JSON.parse(run('npx', ['--no-install', 'mmapvec', 'info', '--json', 'data-import.mvec'], { cwd: app, env }))
if (info.length !== 1000 || JSON.stringify(info.schema) !== JSON.stringify({ pos: ['f32', 3], id: 'u32', big: 'i64', ok: 'bool' })) {
  fail(`npx mmapvec info printed ${JSON.stringify(info)}`)
}
console.log('npx mmapvec info: 1000 rows and the schema, from the installed bin')
console.log('pack-install-test: the packed packages install and work without cargo or rustc')
