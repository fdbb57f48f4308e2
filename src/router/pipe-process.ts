import type { Socket } from 'node:net';
import { pipeSockets } from './pipe.ts';
import type { FromPipeProcess, ToPipeProcess } from './pipe-protocol.ts';

/**
 * A pipe process: the manager hands it accepted client sockets with their backend, and it moves
 * the bytes. Several of them use several cores, which one Node event loop cannot; the manager
 * keeps every decision (where a connection goes, holding it, fencing) to itself.
 */
if (!process.send) throw new Error('pipe-process runs as a child of regent run');
const send = (m: FromPipeProcess) => process.send?.(m);
const pipes = new Map<number, () => void>();

process.on('message', (m: ToPipeProcess, handle?: unknown) => {
  switch (m.op) {
    case 'pipe': {
      const client = handle as Socket | undefined;
      const report = (bytesFromClient: number, bytesToClient: number) => {
        pipes.delete(m.conn);
        send({ ev: 'closed', conn: m.conn, bytesFromClient, bytesToClient });
      };
      // The client may have gone while the handle was in flight.
      if (!client) return report(0, 0);
      pipes.set(m.conn, pipeSockets(client, { host: m.host, port: m.port }, report));
      return;
    }
    case 'close': {
      let closed = 0;
      for (const conn of m.conns) {
        const end = pipes.get(conn);
        if (!end) continue;
        end();
        closed++;
      }
      return send({ reply: m.id, closed });
    }
    case 'stop':
      // The manager is stopping and counts nothing more: just go (exit closes every socket).
      process.exit(0);
  }
});

// The manager is gone (stopped or killed): so is every decision behind these pipes.
process.on('disconnect', () => process.exit(0));
send({ ev: 'ready' });
