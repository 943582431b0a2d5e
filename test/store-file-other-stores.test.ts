/**
 * session-file-store's sessions in SESSION_DIR (issue 11: "session-file-store's files are not read
 * and nothing says so"). Its files are `<dir>/<id>.json`, named like the top-level records of our
 * pre-shard layout, and their mtime is their last write — which the reaper read as "expired" and
 * deleted them all on its first pass. Now: one warning at boot naming the directory, the count and
 * the migration guide; the files are never read and never reaped (content and mtime unchanged).
 * Real session-file-store writing real files, our real store and reaper, and the plugin's log.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import expressSession from 'express-session'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { encodeRecord } from '../lib/sessions/stores/file/envelope'
import { newSessionId } from './helpers/store-contract'
import { CLEAN_ENV, SECRET_A, startApp, withEnv } from './fixtures/sessions-helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const SessionFileStore = require('session-file-store')(expressSession)

const WARNING = /^session directory (\S+) holds (\d+) session files? of another store at its top level .*session-file-store keeps its sessions that way\); this store does not read them, so those sessions do not carry over .* leaves them alone \(never reaped\)\. To keep them, see the README, "Migrating from session-file-store"$/

/** A directory where session-file-store 1.5 saved `count` sessions through its own API; their ids and files' content/mtime. */
async function theirDirectory (t: Test, count: number): Promise<{ dir: string, ids: string[], unchanged: () => string[] }> {
  const dir = path.join(t.testdir(), 'sessions')
  const theirs = new SessionFileStore({ path: dir, retries: 0, reapInterval: -1, logFn: () => {} })
  const ids = Array.from({ length: count }, () => newSessionId())
  for (const id of ids) {
    await new Promise<void>((resolve, reject) => theirs.set(id, { cookie: { originalMaxAge: 86_400_000, expires: new Date(Date.now() + 86_400_000) }, user: 'alice' }, (err: unknown) => err != null ? reject(err) : resolve()))
  }
  const before = new Map(ids.map((id) => {
    const file = path.join(dir, `${id}.json`)
    return [file, { content: fs.readFileSync(file), mtimeMs: fs.statSync(file).mtimeMs }]
  }))
  t.ok(ids.every((id) => fs.readFileSync(path.join(dir, `${id}.json`), 'utf8').includes('"user":"alice"')), 'session-file-store wrote its files')
  const unchanged = (): string[] => [...before].filter(([file, b]) => !fs.existsSync(file) || !fs.readFileSync(file).equals(b.content) || fs.statSync(file).mtimeMs !== b.mtimeMs).map(([file]) => path.basename(file))
  return { dir, ids, unchanged }
}

t.test("our file store on session-file-store's directory: one warning, its sessions not read, and never reaped", async (t) => {
  const { dir, ids, unchanged } = await theirDirectory(t, 3)
  const warnings: string[] = []
  const store = new FileSessionStore({ dir, reapIntervalMs: 0, log: { warn: (m) => warnings.push(m) } })
  t.teardown(() => store.close())

  const said = warnings.filter((w) => WARNING.test(w))
  t.equal(said.length, 1, 'one warning at boot')
  t.equal(WARNING.exec(said[0] ?? '')?.[1], dir, 'naming the directory')
  t.equal(WARNING.exec(said[0] ?? '')?.[2], '3', 'and how many files')
  for (const id of ids) t.equal(await store.get(id), null, 'not read: no session')

  const reaped = await store.reap()
  t.equal(reaped?.expired, 0, 'the reaper removed none of them')
  t.equal(reaped?.foreign, 3, 'it counted them as another store\'s')
  t.same(unchanged(), [], 'every file is there, content and mtime unchanged')
  t.equal(warnings.filter((w) => WARNING.test(w)).length, 1, 'still one warning after the reaper pass')

  // Our own sessions live next to them as usual.
  const id = newSessionId()
  await store.set(id, '{"user":"bob"}', 60_000)
  t.equal((await store.get(id))?.json, '{"user":"bob"}')
})

t.test('a top-level record of ours (the layout before shards) is still reaped once expired, without a warning', async (t) => {
  const dir = path.join(t.testdir(), 'sessions')
  fs.mkdirSync(dir, { mode: 0o700 })
  const old = path.join(dir, `${newSessionId()}.json`)
  fs.writeFileSync(old, encodeRecord('{"user":"old"}'), { mode: 0o600 })
  const past = Date.now() / 1000 - 3600
  fs.utimesSync(old, past, past)
  const warnings: string[] = []
  const store = new FileSessionStore({ dir, reapIntervalMs: 0, log: { warn: (m) => warnings.push(m) } })
  t.teardown(() => store.close())
  const reaped = await store.reap()
  t.equal(reaped?.expired, 1)
  t.notOk(fs.existsSync(old), 'removed')
  t.same(warnings, [], 'nothing to say')
})

t.test('through the plugin: SESSION_DIR pointed at session-file-store\'s directory logs the warning once', async (t) => {
  const { dir, unchanged } = await theirDirectory(t, 2)
  withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A, SESSION_STORE: 'file', SESSION_DIR: dir })
  const { logs } = await startApp(t)
  const lines = logs.lines.filter((l) => WARNING.test(l.msg))
  t.equal(lines.length, 1, 'one line')
  t.equal(lines[0]?.level, 40, 'a warning')
  t.match(lines[0]?.msg, `session directory ${dir} holds 2 session files of another store`)
  t.same(unchanged(), [], 'the files are untouched')
})
