import { connect, type Socket } from 'node:net';

export interface Backend {
  host: string;
  port: number;
}

/**
 * Connects to `backend` and moves bytes both ways, untouched, until either side closes. The
 * client socket arrives paused (nothing read yet), so nothing is lost while the upstream
 * connection opens. `onClose` runs exactly once with the byte counts of the client side.
 * Returns a function that ends both sides at once (and reports the close synchronously).
 */
export function pipeSockets(client: Socket, backend: Backend, onClose: (bytesFromClient: number, bytesToClient: number) => void): () => void {
  const upstream = connect({ host: backend.host, port: backend.port, noDelay: true });
  client.setNoDelay(true);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.destroy();
    upstream.destroy();
    onClose(client.bytesRead, client.bytesWritten);
  };
  client.on('error', close);
  client.on('close', close);
  upstream.on('error', close);
  upstream.on('close', close);
  upstream.once('connect', () => {
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  return close;
}
