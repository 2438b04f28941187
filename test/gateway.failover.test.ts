/**
 * Two gateway processes (`node gateway/main.ts`, as `hitloop gateway` runs them) serve one run on a
 * shared SQLite file (outbox by polling). One is killed with SIGKILL mid-run and started again:
 * its agents reconnect to the other instance or the restarted one, and the run completes with no
 * submission lost or duplicated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, Unit } from '../model/entities.ts';
import { runSimulation } from '../simulate/simulate.ts';
import { freePort } from '../toolchain/ports.ts';
import { type GatewayProcess, startGatewayProcess } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

describe('gateway failover (two processes, SQLite)', () => {
  let stack: Stack;
  const gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    stack = await startStack('sqlite');
  });
  afterAll(async () => {
    for (const g of gateways) if (g.child.exitCode === null && g.child.signalCode === null) await g.stop();
    await stack?.stop();
  });

  it('a gateway killed with SIGKILL mid-run: agents resume elsewhere and every unit is submitted exactly once', async () => {
    const units = 30;
    const { runId } = await stack.operator.launch(formConfig({}, units));
    await eventually(async () => ((await stack.operator.status(runId)).status === 'running' ? true : undefined), 'the run to be running');
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startGatewayProcess(stack, { port: portA });
    const b = await startGatewayProcess(stack, { port: portB });
    gateways.push(a, b);

    const simulation = runSimulation({ gatewayUrl: [a.url, b.url], runId, workers: 8, thinkMs: 300, seed: 11, timeoutMs: 240_000 });
    await eventually(async () => {
      const done = await stack.db.em().count(Unit, { taskRun: runId, status: 'completed' });
      return done >= 6 ? true : undefined;
    }, 'some units to be submitted before the crash');
    await a.kill();
    // Started again on the same port: workers coming back may land on it or on B.
    const restarted = await startGatewayProcess(stack, { port: portA });
    gateways.push(restarted);

    const summary = await simulation;
    expect(summary.errors).toEqual([]);
    expect(summary.timedOut).toBe(false);
    expect(summary.connectionsLost).toBeGreaterThan(0);
    expect(summary.submitted).toBe(units);
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final).toMatchObject({ status: 'completed', units: { completed: units } });
    const agents = await stack.db.em().find(Agent, { taskRun: runId, submission: { $ne: null } });
    expect(agents).toHaveLength(units);
    expect(new Set(agents.map((x) => x.unit.id)).size).toBe(units);
    expect(agents.every((x) => x.status === 'completed')).toBe(true);
    expect(await stack.db.em().count(Agent, { taskRun: runId, status: { $nin: ['completed'] } })).toBe(0);
  });
});
