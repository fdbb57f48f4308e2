#!/usr/bin/env node
// Launcher: registers tsx in this process and runs the TypeScript CLI, so `npx regent` works straight
// from a checkout with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
