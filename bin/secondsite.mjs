#!/usr/bin/env node
// The `secondsite` executable. The product is TypeScript run through tsx's loader, so a
// checkout works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
