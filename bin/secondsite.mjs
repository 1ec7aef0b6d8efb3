#!/usr/bin/env -S node --initial-old-space-size=256
// The `secondsite` executable. The product is TypeScript run through tsx's loader, so a
// checkout works right after `npm ci` with no build step. The shebang's V8 flags are
// agent/host/node-flags.ts NODE_FLAGS (why: there); its test keeps the two the same.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
