import type { Server } from 'node:net';

/**
 * Every listening socket of this data-plane process, by address, and the ones a data plane being
 * replaced handed over (upgrade): a listener opens on the inherited socket when there is one, so
 * clients never meet a closed port. What is listening is what an upgrade hands on.
 */
const inherited = new Map<string, unknown>();
const listening = new Map<string, Server>();

const key = (host: string, port: number) => `${host}:${port}`;

/** A listening socket received from the process this one replaces. */
export function inheritListener(address: string, handle: unknown): void {
  inherited.set(address, handle);
}

/** Listens on host:port, or on the socket handed over for that address; resolves once listening. */
export function listenOn(server: Server, host: string, port: number): Promise<void> {
  const address = key(host, port);
  const handle = inherited.get(address);
  inherited.delete(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      listening.set(address, server);
      server.once('close', () => {
        if (listening.get(address) === server) listening.delete(address);
      });
      resolve();
    };
    if (handle !== undefined) server.listen(handle as Server, done);
    else server.listen(port, host, done);
  });
}

/** The listening sockets of this process, for an upgrade to hand over. */
export function listeners(): Map<string, Server> {
  return new Map(listening);
}

/** Handed-over sockets nobody took (a listener the new configuration no longer has): closed. */
export function unusedInherited(): string[] {
  return [...inherited.keys()];
}
