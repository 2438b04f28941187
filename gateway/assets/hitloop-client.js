/* global WebSocket, setTimeout, setInterval, clearInterval, crypto, console */
/**
 * hitloop's browser client for the gateway protocol (docs/protocol.md), version 1.
 *
 * It registers (or resumes with its agent token after a reload or a dropped connection), reconnects
 * with backoff, sends heartbeats, acknowledges outbox messages, drops duplicates by `seq`, and
 * resends an unacknowledged submit after a reconnect. The page gives it a `store` (sessionStorage
 * in a browser) so that a reload resumes the same agent.
 *
 *   const client = new HitloopClient({ url, runId, params, store, onEvent });
 *   client.start();
 *   await client.submit({ label: 'positive' });
 */

const VERSION = 1;
const HEARTBEAT_MS = 10000;
/** Nothing heard for this long: the socket is presumed dead and replaced. */
const SILENCE_MS = 30000;
const ACK_DELAY_MS = 100;
/** The gateway closed this socket because another one resumed the same agent. */
const CLOSE_REPLACED = 4001;
const RESUME_ERRORS = new Set(['agent_ended', 'invalid_token', 'token_mismatch']);

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export class HitloopClient {
  /**
   * @param {{ url: string, runId: string, params: Record<string, string>,
   *           store?: { load(): any, save(value: any): void },
   *           onEvent: (event: { type: string, [key: string]: any }) => void }} options
   */
  constructor(options) {
    this.url = options.url;
    this.runId = options.runId;
    this.params = options.params;
    this.store = options.store ?? { load: () => null, save: () => {} };
    this.onEvent = options.onEvent;
    const saved = this.store.load();
    this.session = saved && saved.runId === this.runId ? saved : this.#freshSession();
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    this.pendingSubmit = null;
    this.pendingReturn = null;
    this.ackTimer = null;
    this.lastHeard = 0;
    this.heartbeat = null;
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  /** Leave for good: no reconnect. */
  stop() {
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(1000, 'bye');
  }

  /** Forget the current agent and ask for new work (after a refusal or an ended unit). */
  registerAgain() {
    this.session = this.#freshSession();
    this.#save();
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.#hello();
    else this.#connect();
  }

  /** Resolves when the gateway has handed the submission to the workflow; rejects with the error packet. */
  submit(data) {
    if (this.pendingSubmit) return this.pendingSubmit.promise;
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.pendingSubmit = { submitKey: newKey(), data, promise, resolve, reject };
    this.#sendSubmit();
    return promise;
  }

  returnUnit() {
    return new Promise((resolve, reject) => {
      this.pendingReturn = { resolve, reject };
      this.#send({ v: VERSION, type: 'return' });
    });
  }

  sendLive(data) {
    this.#send({ v: VERSION, type: 'live', actionId: newKey(), data });
  }

  #freshSession() {
    return { runId: this.runId, registrationKey: newKey(), agentId: null, token: null, lastSeq: 0, onboardingAgentId: null };
  }

  #save() {
    this.store.save(this.session);
  }

  #emit(event) {
    try {
      this.onEvent(event);
    } catch (err) {
      console.error('hitloop: event handler failed', err);
    }
  }

  #connect() {
    if (this.stopped) return;
    this.#emit({ type: this.attempt === 0 ? 'connecting' : 'reconnecting', attempt: this.attempt });
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.#hello();
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => {
        if (Date.now() - this.lastHeard > SILENCE_MS) ws.close(4000, 'no answer from the gateway');
        else this.#send({ v: VERSION, type: 'heartbeat' });
      }, HEARTBEAT_MS);
    };
    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      let packet;
      try {
        packet = JSON.parse(event.data);
      } catch {
        return;
      }
      this.#receive(packet);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      clearInterval(this.heartbeat);
      this.ws = null;
      if (this.stopped) return;
      if (event.code === CLOSE_REPLACED) {
        // The same agent is open elsewhere (another tab): taking it back would start a tug of war.
        this.stopped = true;
        this.#emit({ type: 'replaced' });
        return;
      }
      this.attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5)) * (0.5 + Math.random() / 2);
      this.#emit({ type: 'disconnected', code: event.code, reason: event.reason, retryInMs: Math.round(delay) });
      setTimeout(() => this.#connect(), delay);
    };
  }

  #hello() {
    const s = this.session;
    if (s.token) this.#send({ v: VERSION, type: 'resume', runId: this.runId, agentId: s.agentId, token: s.token, lastSeq: s.lastSeq });
    else this.#send({ v: VERSION, type: 'register', runId: this.runId, params: this.params, registrationKey: s.registrationKey });
  }

  #send(packet) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(packet));
  }

  #sendSubmit() {
    const p = this.pendingSubmit;
    if (p && (this.session.token || this.session.onboardingAgentId)) this.#send({ v: VERSION, type: 'submit', submitKey: p.submitKey, data: p.data });
  }

  #receive(packet) {
    switch (packet.type) {
      case 'agent':
        this.session.agentId = packet.agentId;
        this.session.token = packet.token;
        this.session.onboardingAgentId = null;
        this.#save();
        this.#emit({ type: 'agent', agent: packet });
        // A new socket for the same agent: a submit never acknowledged on the old one goes again
        // (same submitKey, so it is stored once).
        if (packet.status === 'in_task') this.#sendSubmit();
        return;
      case 'onboarding':
        // Onboarding comes before any agent; a reconnect registers again (same key) and lands here again.
        this.session.onboardingAgentId = packet.onboardingAgentId;
        this.#save();
        this.#emit({ type: 'onboarding', onboardingAgentId: packet.onboardingAgentId, initData: packet.initData });
        this.#sendSubmit();
        return;
      case 'refused':
        this.session.onboardingAgentId = null;
        this.#save();
        this.#emit({ type: 'refused', reason: packet.reason, detail: packet.detail });
        return;
      case 'message':
        if (packet.seq <= this.session.lastSeq) return;
        this.session.lastSeq = packet.seq;
        this.#save();
        this.#scheduleAck();
        if (packet.kind === 'status') {
          this.#emit({ type: 'status', status: packet.payload.status, payload: packet.payload });
        } else if (packet.kind === 'live') this.#emit({ type: 'live', from: packet.payload.from, data: packet.payload.data });
        else this.#emit({ type: 'message', kind: packet.kind, payload: packet.payload });
        return;
      case 'submit_ack':
        if (this.pendingSubmit && this.pendingSubmit.submitKey === packet.submitKey) {
          this.pendingSubmit.resolve(packet);
          this.pendingSubmit = null;
        }
        return;
      case 'return_ack':
        if (this.pendingReturn) this.pendingReturn.resolve(packet);
        this.pendingReturn = null;
        return;
      case 'error':
        this.#onError(packet);
        return;
      default:
        return;
    }
  }

  #onError(packet) {
    if (packet.ref === 'resume' && RESUME_ERRORS.has(packet.code)) {
      // The agent is over (or the token is no good): forget it; the page decides what to show.
      const status = packet.status ?? null;
      this.session = this.#freshSession();
      this.#save();
      if (this.pendingSubmit) {
        if (status === 'completed') this.pendingSubmit.resolve({ type: 'submit_ack', submitKey: this.pendingSubmit.submitKey });
        else this.pendingSubmit.reject(packet);
        this.pendingSubmit = null;
      }
      this.#emit({ type: 'ended', status, code: packet.code, message: packet.message });
      return;
    }
    if (packet.ref === 'submit' && this.pendingSubmit) {
      if (packet.code === 'already_submitted') this.pendingSubmit.resolve(packet);
      else if (packet.code !== 'temporal_unavailable') this.pendingSubmit.reject(packet);
      else {
        // Try again shortly: nothing was stored.
        setTimeout(() => this.#sendSubmit(), 1000);
        return;
      }
      this.pendingSubmit = null;
    }
    if (packet.ref === 'return' && this.pendingReturn) {
      this.pendingReturn.reject(packet);
      this.pendingReturn = null;
    }
    this.#emit({ type: 'error', code: packet.code, message: packet.message, ref: packet.ref, status: packet.status });
  }

  #scheduleAck() {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.#send({ v: VERSION, type: 'ack', seq: this.session.lastSeq });
    }, ACK_DELAY_MS);
  }
}
