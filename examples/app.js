'use strict'
// A small app served by `prodserver serve examples/app.js` (see README "Quick start").
// It counts visits in a session: with several workers the count keeps going up whichever
// worker answers, because the session store (file store by default) is shared.
const { sessions } = require('fastify-prodserver')

module.exports = async function app (fastify) {
  await fastify.register(sessions)

  fastify.get('/', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return { visits, pid: process.pid, store: fastify.sessionBackend.kind }
  })

  fastify.post('/login', async (request) => {
    // A new id on every privilege change prevents session fixation (CVE-2023-29019).
    await request.session.regenerate()
    request.session.set('user', 'demo')
    return { user: 'demo' }
  })

  fastify.post('/logout', async (request) => {
    await request.session.destroy()
    return { loggedOut: true }
  })

  fastify.get('/healthz', async () => ({ ok: true }))
}

// Fastify server options for this app (the launcher's tuned options win on tuned keys).
module.exports.options = { logger: { level: 'info' } }
