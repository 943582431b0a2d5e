// Types of the ESM entry (esm/index.mjs). The package is compiled to CommonJS; an ESM consumer's
// default import is the plugin itself, not the CommonJS exports object (what the CommonJS
// declarations alone would tell TypeScript under module nodenext: "masquerading as CJS").
import { sessions } from '../dist/index.js'

export * from '../dist/index.js'
export default sessions
