/** `hitloop gateway`: serve task pages and the agents' WebSocket until SIGTERM / SIGINT. */
import { type Command, InvalidArgumentError } from 'commander';
import { runGatewayProcess } from '../../gateway/main.ts';

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return port;
}

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description("serve task pages and the agents' WebSocket on one port (several instances may serve the same runs)")
    .option('--port <port>', 'port to listen on (default: HITLOOP_GATEWAY_PORT, else 3000)', parsePort)
    .option('--host <host>', 'interface to listen on (default: HITLOOP_GATEWAY_HOST, else 127.0.0.1; 0.0.0.0 in a container)')
    .action(async (opts: { port?: number; host?: string }) => {
      await runGatewayProcess({
        port: opts.port,
        host: opts.host,
        onListening: (gateway) => process.stdout.write(`hitloop gateway listening on ${gateway.url} (instance ${gateway.instanceId})\n`),
      });
    });
}
