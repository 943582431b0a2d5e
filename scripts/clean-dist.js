#!/usr/bin/env node
'use strict'
// Before `npm pack` / `npm publish` builds: an empty dist/, so a module removed from the source
// never ships as a stale compiled file.
require('node:fs').rmSync(require('node:path').join(__dirname, '..', 'dist'), { recursive: true, force: true })
