// ESM entry: the package is compiled to CommonJS; this re-exports it with a real default export.
import cjs from '../dist/index.js'

export default cjs.default
export const sessions = cjs.sessions
export const serve = cjs.serve
export const planServer = cjs.planServer
export const readResources = cjs.readResources
export const KnobError = cjs.KnobError
