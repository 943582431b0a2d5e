// A CommonJS TypeScript consumer under module nodenext (require condition → dist/index.d.ts):
// `import x = require()` and the default export are the plugin and the launcher.
import Fastify = require('fastify')
import prodserver = require('fastify-prodserver')

const { sessions, serve } = prodserver
const app = Fastify.default()
app.register(sessions)
app.register(prodserver.default, { ttl: '1h' })
// @ts-expect-error cookieSecure is 'auto' | boolean
app.register(prodserver.default, { cookieSecure: 'yes' })
export const started: Promise<prodserver.ServeHandle> = serve({ app: async () => {} })

// The ES import syntax a TypeScript project compiled to CommonJS writes (tsc emits require()):
// the default import is the plugin too, next to the named ones.
import plugin, { sessions as namedPlugin, type ServeHandle } from 'fastify-prodserver'
app.register(plugin, { store: 'memory' })
app.register(namedPlugin)
// @ts-expect-error not a store name
app.register(plugin, { store: 'mongo' })
export const alsoStarted: Promise<ServeHandle> = prodserver.serve({ app: async () => {} })
