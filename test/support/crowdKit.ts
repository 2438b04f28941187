/**
 * crowd-kit's Dawid-Skene (PyPI `crowd-kit`), run on an (item, worker, label) table: the
 * independent implementation hitloop's aggregation is compared with. The venv comes from
 * scripts/crowd-kit-venv (scripts/test prepares it and sets HITLOOP_CROWD_KIT_PYTHON).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Vote } from '../../aggregation/types.ts';

function crowdKitPython(): string {
  const given = process.env.HITLOOP_CROWD_KIT_PYTHON;
  if (given) return given;
  const script = fileURLToPath(new URL('../../scripts/crowd-kit-venv', import.meta.url));
  return execFileSync(script, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim();
}

const PROGRAM = `
import json, sys
import pandas as pd
from crowdkit.aggregation import DawidSkene
rows = json.load(sys.stdin)
df = pd.DataFrame(rows["votes"]).rename(columns={"item": "task"})
gold = pd.Series(rows["gold"], dtype=object) if rows["gold"] else None
labels = DawidSkene(n_iter=100).fit_predict(df, gold) if gold is not None else DawidSkene(n_iter=100).fit_predict(df)
json.dump({str(k): str(v) for k, v in labels.items()}, sys.stdout)
`;

/** Item -> label by crowd-kit's DawidSkene (gold: item -> known label, crowd-kit's `true_labels`). */
export function crowdKitDawidSkene(votes: readonly Vote[], gold: ReadonlyMap<string, string> = new Map()): Map<string, string> {
  const out = execFileSync(crowdKitPython(), ['-c', PROGRAM], {
    input: JSON.stringify({ votes, gold: Object.fromEntries(gold) }),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  return new Map(Object.entries(JSON.parse(out) as Record<string, string>));
}
