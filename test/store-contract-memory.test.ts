/** The shared store contract (test/helpers/store-contract.ts) against MemorySessionStore. */
import t from 'tap'
import { storeContract } from './helpers/store-contract'
import { MemorySessionStore } from '../lib/sessions/stores/memory'

t.test('contract: memory store', async (t) => {
  await storeContract(t, async () => {
    const store = new MemorySessionStore()
    return { store, cleanup: async () => await store.close() }
  })
})
