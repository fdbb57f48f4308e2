import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { WireDecision, WireObservation } from './wire.ts';

/**
 * Replacing a running data plane without dropping a session (`regent dataplane upgrade`, or a
 * manager that finds its data plane running older code). The old process starts the new one with
 * an IPC channel and hands it every listening socket; both accept for a moment, then the new one
 * takes the control socket and the PID file and the old one stops accepting. The old process keeps
 * the sessions it has (a byte stream or a MySQL session cannot move between processes mid-flight)
 * and follows the new one's decisions as a peer until its last session ends, then exits.
 *
 * The messages, in order (old -> new unless marked):
 *   new -> old  {type: 'hello'}                      loaded, waiting for sockets
 *   old -> new  {type: 'listener', address} + handle  one per listening socket
 *   old -> new  {type: 'state', clusters}             what every router was told last
 *   new -> old  {type: 'listening'}                   listening on every socket, state applied
 *   old -> new  {type: 'control'}                     the old one let go of the control socket
 *   new -> old  {type: 'ready'}                       the new one serves the control socket and owns the PID file
 */
export type Handover =
  | { type: 'hello' }
  | { type: 'listener'; address: string }
  | { type: 'state'; clusters: { cluster: string; decision: WireDecision; observations: WireObservation[] }[] }
  | { type: 'listening' }
  | { type: 'control' }
  | { type: 'ready' }
  | { type: 'failed'; error: string };

const REGENT_BIN = fileURLToPath(new URL('../../bin/regent.js', import.meta.url));

/** Starts the successor: `regent dataplane run --takeover`, detached, logging where this one logs. */
export function spawnSuccessor(args: { configFile: string; socket: string; pidFile: string; logFile: string }): ChildProcess {
  const out = openSync(args.logFile, 'a');
  const child = spawn(process.execPath, [REGENT_BIN, 'dataplane', 'run', '--config', args.configFile, '--socket', args.socket, '--pid-file', args.pidFile, '--takeover'], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, REGENT_LOG_FORMAT: 'json' },
  });
  closeSync(out);
  return child;
}

/** The next message of a type from the other side, or an error when it fails, exits or takes too long. */
export function expect<T extends Handover['type']>(peer: NodeJS.Process | ChildProcess, type: T, timeoutMs: number): Promise<Extract<Handover, { type: T }> & { handle?: unknown }> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      peer.off('message', onMessage);
      peer.off('exit', onExit);
      peer.off('disconnect', onExit);
    };
    const onMessage = (m: Handover, handle?: unknown) => {
      if (m.type === 'failed') {
        cleanup();
        reject(new Error(m.error));
      } else if (m.type === type) {
        cleanup();
        resolve({ ...(m as Extract<Handover, { type: T }>), handle });
      }
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`the other data plane went away while waiting for "${type}"`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "${type}" from the other data plane within ${timeoutMs} ms`));
    }, timeoutMs);
    peer.on('message', onMessage);
    peer.on('exit', onExit);
    peer.on('disconnect', onExit);
  });
}

export function send(peer: NodeJS.Process | ChildProcess, m: Handover, handle?: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (e: Error | null) => (e ? reject(e) : resolve());
    if (!peer.send) return reject(new Error('no IPC channel to the other data plane'));
    if (handle) (peer.send as (m: unknown, h: unknown, o: unknown, cb: (e: Error | null) => void) => boolean)(m, handle, {}, cb);
    else (peer.send as (m: unknown, cb: (e: Error | null) => void) => boolean)(m, cb);
  });
}

/** Receives the sockets and the state from the predecessor (the successor's side, before it starts). */
export async function receiveFromPredecessor(onListener: (address: string, handle: unknown) => void): Promise<Extract<Handover, { type: 'state' }>['clusters']> {
  let onMessage: ((m: Handover, handle?: unknown) => void) | undefined;
  const state = new Promise<Extract<Handover, { type: 'state' }>['clusters']>((resolve) => {
    onMessage = (m, handle) => {
      if (m.type === 'listener') onListener(m.address, handle);
      if (m.type === 'state') resolve(m.clusters);
    };
    process.on('message', onMessage);
  });
  try {
    await send(process, { type: 'hello' });
    return await Promise.race([state, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the predecessor sent no sockets within 30 s')), 30000).unref())]);
  } finally {
    process.off('message', onMessage!);
  }
}
