/**
 * What the simulated workers saw, kept by the harness to check against the database afterwards:
 * every submission a gateway acknowledged (with the exact data sent), every outbox seq delivered
 * per agent, and counters of what happened on the way (drops, resumes, retries, errors).
 */

export interface AckedSubmission {
  workerId: string;
  agentId: string;
  unitId: string;
  submitKey: string;
  /** The submission exactly as sent (JSON text of the packet's `data`). */
  dataJson: string;
  /** A value found only in this submission, to count how many stored rows hold it. */
  nonce: string;
  ackedAt: Date;
}

export interface DeliveryRecord {
  /** seqs in arrival order, across reconnects, duplicates included. */
  seqs: number[];
}

export class Ledger {
  readonly acked: AckedSubmission[] = [];
  /** Submissions sent whose ack never came (the worker moved on after its agent ended). */
  readonly unacked: Array<{ agentId: string; submitKey: string; nonce: string; why: string }> = [];
  readonly deliveries = new Map<string, DeliveryRecord>();
  readonly counters: Record<string, number> = {};
  /** Things a correct system never does (a token refused for its own agent, a malformed packet...). */
  readonly anomalies: string[] = [];

  count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  delivered(agentId: string, seq: number): void {
    let record = this.deliveries.get(agentId);
    if (!record) {
      record = { seqs: [] };
      this.deliveries.set(agentId, record);
    }
    record.seqs.push(seq);
  }

  anomaly(text: string): void {
    if (this.anomalies.length < 200) this.anomalies.push(`${new Date().toISOString()} ${text}`);
  }
}
