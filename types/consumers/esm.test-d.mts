// An ESM TypeScript consumer under module nodenext, importing the package by name as an app
// does (the package's own "exports" map, ESM condition → esm/index.d.mts): the default import is
// the plugin, the named ones are there, and session typing merges as documented.
import Fastify from 'fastify'
import sessions, { sessions as named, serve, planServer, readResources, KnobError, type ServeOptions, type ServeHandle, type SessionBackend, type Plan } from 'fastify-prodserver'

declare module 'fastify' {
  interface Session { user?: string }
}

const app = Fastify()
await app.register(sessions)
await app.register(named, { store: 'memory' })
// @ts-expect-error not a store name
await app.register(sessions, { store: 'mongo' })
app.get('/', async (request) => {
  request.session.user = 'alice'
  // @ts-expect-error user is a string
  request.session.user = 42
  const backend: SessionBackend = app.sessionBackend
  return { user: request.session.get('user'), kind: backend.kind }
})
const options: ServeOptions = { app: async () => {}, port: 0, cluster: false }
const handle: Promise<ServeHandle> = serve(options)
const plan: Plan = planServer({ cluster: true }, readResources())
const err: Error = new KnobError('x')
export { handle, plan, err }
