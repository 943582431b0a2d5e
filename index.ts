/**
 * fastify-prodserver: public exports only.
 */
import sessions from './lib/sessions/plugin'

export default sessions
export { sessions }
export { serve, type ServeOptions, type ServeHandle } from './lib/serve'
export { planServer } from './lib/plan/plan-server'
export { readResources } from './lib/system/resources'
export { KnobError } from './lib/config/values'
export type { Plan, Resources } from './lib/plan/types'
export type { SessionsOptions, SessionBackend } from './lib/sessions/plugin'
