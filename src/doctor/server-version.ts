import { connect } from 'node:net';

/**
 * The server's version string from the greeting every MySQL/MariaDB server sends before any login
 * (protocol 10 handshake: 4-byte header, protocol byte, NUL-terminated version). Reading it needs
 * no account, so `regent grants` can tell the server family before Regent's account exists.
 * Nothing is sent to the server; the connection is closed right after the greeting.
 */
export function readServerVersion(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = Buffer.alloc(0);
    const done = (err?: Error, version?: string) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(version!);
    };
    const timer = setTimeout(() => done(new Error(`${host}:${port}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => done(new Error(`${host}:${port}: ${e.code === 'ECONNREFUSED' ? 'connection refused' : e.message}`)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 5) return;
      const protocol = buf[4];
      // 0xff: the server refused us right away (e.g. host blocked) with an error packet.
      if (protocol === 0xff) return done(new Error(`${host}:${port}: the server refused the connection: ${buf.subarray(7).toString('utf8')}`));
      if (protocol !== 10) return done(new Error(`${host}:${port}: not a MySQL/MariaDB server (protocol ${protocol})`));
      const end = buf.indexOf(0, 5);
      if (end < 0) return;
      done(undefined, normalizeVersion(buf.subarray(5, end).toString('utf8')));
    });
  });
}

/** MariaDB prefixes its greeting with "5.5.5-" for old clients; SELECT @@version has no prefix. */
export function normalizeVersion(v: string): string {
  return v.replace(/^5\.5\.5-/, '');
}
