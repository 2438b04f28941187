/**
 * Free TCP ports for servers started by hitloop (dev server, UI, gateway in tests).
 */
import net from 'node:net';

/**
 * A port that was free on `host` a moment ago. The kernel hands out ephemeral ports round-robin, so
 * the port is not given to someone else before the caller binds it in any realistic interleaving.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', (err) => reject(new Error(`Could not find a free TCP port on ${host}: ${err.message}`)));
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`Could not find a free TCP port on ${host}: unexpected address ${String(address)}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Whether something accepts TCP connections on host:port right now (a server's readiness probe). */
export function acceptsConnections(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
