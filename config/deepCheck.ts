/**
 * The deep check of a validated task-run config, run by `hitloop validate` and by every launch:
 * the data, screening and gold files read to the end (a broken line is named with its file and line
 * before the run exists, not minutes into it), an empty data set refused, a blueprint template read,
 * and what the run would cost. All problems are reported together, as one ConfigError.
 */
import fs from 'node:fs';
import { providers } from '../registry/index.ts';
import { providerFee } from '../review/spend.ts';
import { countAssignments, readAssignments, readGoldItems } from './dataSource.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { componentOptions, type TaskRunConfig } from './taskRunConfig.ts';

export interface CostPreview {
  currency: string;
  assignments: number;
  units: number;
  reward: number;
  /** units x reward. */
  unitsCost: number;
  /** Gold units a worker doing every unit would be given on top (an estimate: golds go per worker). */
  goldUnits: number;
  goldCost: number;
  /** Screening is paid per worker screened, how many is not known in advance. */
  screeningPerWorker: number | null;
  /** The provider's fee on everything above (0 when it takes none). */
  feeRate: number;
  fees: number;
  total: number;
  maxSpend: number | null;
}

/** Read everything the config names; throws one ConfigError listing every problem. */
export async function deepCheckRunConfig(config: TaskRunConfig, where?: string): Promise<CostPreview> {
  const issues: ConfigIssue[] = [];
  const collect = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues.push(...err.issues);
      return undefined;
    }
  };

  const assignments = await collect(() => countAssignments(config.data));
  if (assignments === 0) {
    issues.push({ path: 'data', message: 'the data set is empty: a run needs at least one assignment (one object per line, row or list item)' });
  }
  if (config.screening.enabled && config.screening.data !== undefined) {
    const screening = config.screening.data;
    await collect(async () => {
      for await (const _record of readAssignments(screening, { key: 'screening.data' }));
    });
  }
  if (config.gold.enabled && config.gold.data !== undefined) {
    const gold = config.gold.data;
    const items = await collect(async () => {
      let n = 0;
      for await (const _item of readGoldItems(gold)) n++;
      return n;
    });
    if (items === 0) issues.push({ path: 'gold.data', message: 'no gold items: gold is enabled, so list at least one { input, expected }' });
  }
  const template = componentOptions(config.blueprint).template;
  if (typeof template === 'string') {
    try {
      if (!fs.statSync(template).isFile()) throw new Error('not a regular file');
      fs.accessSync(template, fs.constants.R_OK);
    } catch (err) {
      issues.push({
        path: 'blueprint.template',
        value: template,
        message: `cannot read the template (${(err as Error).message.replace(/, \w+ '[^']*'$/, '')}); a relative path is taken from the config file's folder`,
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, where);
  return costPreview(config, assignments ?? 0);
}

const money = (amount: number): number => Math.round(amount * 10_000) / 10_000;

export function costPreview(config: TaskRunConfig, assignments: number): CostPreview {
  const provider = providers.has(config.provider.type) ? providers.get(config.provider.type) : undefined;
  const units = assignments * config.units_per_assignment;
  const reward = config.task_reward;
  const gold = config.gold;
  const goldUnits = gold.enabled ? gold.min_golds + (gold.gold_every_units > 0 ? Math.floor(units / gold.gold_every_units) : 0) : 0;
  const unitsCost = money(units * reward);
  const goldCost = money(goldUnits * reward);
  const options = componentOptions(config.provider);
  const fees = providerFee(config, unitsCost + goldCost);
  const feeRate = unitsCost + goldCost > 0 ? fees / (unitsCost + goldCost) : 0;
  const currency = typeof options.currency === 'string' ? options.currency : provider?.currency;
  return {
    currency: currency ?? `(currency of provider ${config.provider.type})`,
    assignments,
    units,
    reward,
    unitsCost,
    goldUnits,
    goldCost,
    screeningPerWorker: config.screening.enabled ? reward : null,
    feeRate,
    fees,
    total: money(unitsCost + goldCost + fees),
    maxSpend: config.max_spend ?? null,
  };
}

/** The preview as lines for people. */
export function formatCostPreview(p: CostPreview): string[] {
  const lines = [
    `${p.assignments} assignment(s), ${p.units} unit(s) x ${p.reward} = ${p.unitsCost} ${p.currency}`,
  ];
  if (p.goldUnits > 0) lines.push(`gold: up to ${p.goldUnits} unit(s) per worker x ${p.reward} = ${p.goldCost} ${p.currency}`);
  if (p.screeningPerWorker !== null) lines.push(`screening: ${p.screeningPerWorker} ${p.currency} per worker screened (not in the total)`);
  if (p.feeRate > 0) lines.push(`provider fees: ${Math.round(p.feeRate * 1000) / 10}% = ${p.fees} ${p.currency}`);
  lines.push(`total: ${p.total} ${p.currency}`);
  if (p.maxSpend !== null) {
    lines.push(
      p.total > p.maxSpend
        ? `max_spend ${p.maxSpend} is below the total: the run stops launching when the budget is spent (raise it live with \`hitloop set <runId> max_spend=<n>\`)`
        : `max_spend ${p.maxSpend} covers it`,
    );
  }
  return lines;
}
