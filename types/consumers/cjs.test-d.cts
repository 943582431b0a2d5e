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
