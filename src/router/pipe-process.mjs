// Entry of a pipe process: register tsx (a child starts without its parent's hooks), then run.
import { register } from 'tsx/esm/api';

register();
await import('./pipe-process.ts');
