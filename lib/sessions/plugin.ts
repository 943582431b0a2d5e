/**
 * The sessions plugin: @fastify/session with a store picked from the environment.
 * (Foundation stub: the sessions work replaces it.)
 */
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { StoreCheck } from './stores/types'

export interface SessionBackend {
  kind: 'redis' | 'file' | 'memory'
  reason: string
  check (): Promise<StoreCheck>
}

export interface SessionsOptions {
  store?: 'auto' | 'redis' | 'file' | 'memory'
  secret?: string | string[]
  ttl?: number | string
  cookieName?: string
  cookieSecure?: 'auto' | boolean
  dir?: string
  redisUrl?: string
  redisTimeout?: number | string
  redisPrefix?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionBackend: SessionBackend
  }
}

const sessionsPlugin: FastifyPluginAsync<SessionsOptions> = async () => {}

export default fp(sessionsPlugin, { name: 'fastify-prodserver-sessions', fastify: '5.x' })
