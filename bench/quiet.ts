/**
 * Waiting for the processes to go idle between measured phases, so that one phase's backlog (activities
 * still running, workflow tasks queued) is not billed to the next.
 */
import type { Stack } from '../chaos/stack.ts';

export async function waitUntilQuiet(stack: Stack, opts: { cpuPerSecond?: number; timeoutMs?: number } = {}): Promise<void> {
  const threshold = opts.cpuPerSecond ?? 0.1;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const busy = (): number => stack.workers.reduce((sum, w) => sum + (w.cpuSeconds() ?? 0), 0) + stack.temporal.cpuSeconds();
  let last = busy();
  let calmSeconds = 0;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = busy();
    calmSeconds = now - last < threshold ? calmSeconds + 1 : 0;
    last = now;
    if (calmSeconds >= 2) return;
  }
}
