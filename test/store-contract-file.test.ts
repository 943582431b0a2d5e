/** The shared store contract (test/helpers/store-contract.ts) against FileSessionStore on a real directory. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { storeContract } from './helpers/store-contract'
import { FileSessionStore } from '../lib/sessions/stores/file'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'store-contract-file-'))
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))

t.test('contract: file store', async (t) => {
  let n = 0
  await storeContract(t, async () => {
    const warnings: string[] = []
    const store = new FileSessionStore({ dir: path.join(root, `s${n++}`), log: { warn: (m) => warnings.push(m) } })
    return {
      store,
      cleanup: async () => {
        await store.close()
        t.same(warnings, [], 'the store logged nothing during the contract case')
      }
    }
  })
})
