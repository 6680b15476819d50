#!/usr/bin/env node
'use strict';
// Runs the compiled command line from dist/. Where dist/ is missing (a checkout that skipped
// `npm run build`) or TSALIGN_FROM_SOURCE=1 is set, it runs the TypeScript sources through tsx.
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const compiled = path.join(root, 'dist', 'cli', 'main.js');
if (process.env.TSALIGN_FROM_SOURCE === '1' || !fs.existsSync(compiled)) {
  require('tsx/cjs');
  require(path.join(root, 'src', 'cli', 'main.ts')).main(process.argv);
} else {
  require(compiled).main(process.argv);
}
