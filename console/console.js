/* global document, window, location, fetch, crypto, setTimeout, clearTimeout, URLSearchParams, CSS */
/**
 * The operator console: a page of the gateway (`/admin`) that uses only the JSON API (`/api/v1`).
 * Everything shown from runs, items and submissions goes in as text (textContent), never as HTML.
 * Every action carries a request key, fixed when the action is first asked for, so a double click
 * or a retry is the same request and never acts twice.
 */

const app = document.getElementById('app');
const flashLine = document.getElementById('flash');
const nav = document.getElementById('nav');
let csrfToken = null;
/** The current view's poll timer and key handler, dropped when the view changes. */
let pollTimer = null;
let keyHandler = null;

// ---------------------------------------------------------------------------------------------
// DOM and API helpers
// ---------------------------------------------------------------------------------------------

/** An element; children are nodes or text (always text: never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof window.Node ? child : String(child));
  }
  return el;
}

function flash(text, kind = 'ok') {
  flashLine.textContent = text;
  flashLine.className = `flash ${kind}`;
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiFailure(0, 'network', 'The server cannot be reached; check your connection and try again.');
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 && path !== '/api/v1/session') showLogin('Your session ended; log in again.');
    throw new ApiFailure(response.status, answer.code ?? 'error', answer.message ?? `The server answered ${response.status}.`);
  }
  return answer;
}

const newKey = (what) => `ui-${what}-${crypto.randomUUID()}`;
const money = (n) => (n === null || n === undefined ? '–' : `$${Number(n).toFixed(2)}`);
function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const h_ = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h_ > 0 ? `${h_} h ${m} min` : m > 0 ? `${m} min` : `${seconds} s`;
}
const text = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

/** A value list (item data, a submission), every value as text. */
function kv(object) {
  const list = h('dl', { class: 'kv' });
  if (object === null || typeof object !== 'object') {
    list.append(h('dt', {}, 'value'), h('dd', {}, text(object)));
    return list;
  }
  for (const [key, value] of Object.entries(object)) list.append(h('dt', {}, key), h('dd', {}, text(value)));
  return list;
}

/**
 * A unit's review blocks (the run's blueprint renders them: blueprints/staticFormReview.ts) as
 * read-only fields of the task page's types. Every value is text; URLs were checked by the server.
 */
function blocksOf(blocks, part) {
  const shown = blocks.filter((b) => b.part === part);
  if (shown.length === 0) return [h('p', { class: 'muted' }, part === 'item' ? 'No item data.' : 'No answers.')];
  return shown.map((block) => {
    const help = block.help ? h('p', { class: 'muted help' }, block.help) : null;
    const field = (...content) => h('div', { class: `rv rv-${block.type}`, dataset: { field: block.field, part: block.part } }, h('span', { class: 'rv-label' }, block.label), ...content, help);
    switch (block.type) {
      case 'image':
        return field(block.url ? h('img', { src: block.url, alt: block.label, loading: 'lazy' }) : h('span', { class: 'muted' }, '(no image)'));
      case 'audio':
      case 'video':
        return field(block.url ? h(block.type, { src: block.url, controls: true, preload: 'metadata' }) : h('span', { class: 'muted' }, `(no ${block.type})`));
      case 'link':
        return field(block.url ? h('a', { href: block.url, target: '_blank', rel: 'noopener noreferrer' }, block.url) : h('span', { class: 'muted' }, '(no link)'));
      case 'choice':
        return field(
          h(
            'span',
            { class: 'choices' },
            ...block.options.map((option) =>
              h('label', { class: 'choice' }, h('input', { type: block.multiple ? 'checkbox' : 'radio', disabled: true, checked: block.chosen.includes(option) }), ` ${option}`),
            ),
            ...block.chosen.filter((c) => !block.options.includes(c)).map((c) => h('span', { class: 'error' }, ` (not an option: ${c})`)),
          ),
        );
      case 'checkbox':
        return field(h('label', { class: 'choice' }, h('input', { type: 'checkbox', disabled: true, checked: block.checked }), block.checked ? ' yes' : ' no'));
      case 'number': {
        const bounds = block.min !== undefined || block.max !== undefined ? ` (${block.min ?? '…'} to ${block.max ?? '…'})` : '';
        return field(h('span', { class: 'rv-value' }, block.value === null ? '–' : String(block.value), h('span', { class: 'muted' }, bounds)));
      }
      default:
        return field(h('span', { class: 'rv-value' }, block.value === null ? '–' : block.value));
    }
  });
}

function view(name, ...children) {
  clearTimeout(pollTimer);
  pollTimer = null;
  if (keyHandler) document.removeEventListener('keydown', keyHandler);
  keyHandler = null;
  document.body.dataset.view = name;
  app.replaceChildren(...children);
}

/** Calls `load` now and every `ms` while the view is shown. */
function poll(ms, load) {
  const tick = async () => {
    try {
      await load();
    } catch (err) {
      flash(err.message, 'error');
    }
    pollTimer = setTimeout(tick, ms);
  };
  void tick();
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

function showLogin(message = '') {
  csrfToken = null;
  nav.hidden = true;
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert' }, message);
  const password = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h(
    'form',
    { id: 'login', class: 'card', onsubmit: login },
    h('h1', {}, 'Operator login'),
    h('label', {}, 'Operator password', password),
    h('div', {}, h('button', { type: 'submit' }, 'Log in')),
    error,
  );
  async function login(event) {
    event.preventDefault();
    error.textContent = '';
    try {
      const session = await api('POST', '/api/v1/session', { password: password.value });
      csrfToken = session.csrfToken;
      nav.hidden = false;
      flash('');
      route();
    } catch (err) {
      error.textContent = err.message;
    }
  }
  view('login', form);
  password.focus();
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('DELETE', '/api/v1/session').catch(() => undefined);
  showLogin('You are logged out.');
});

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

function progressOf(run) {
  const done = run.doneUnits;
  const total = run.totalUnits;
  return h('span', { class: 'progress' }, h('progress', { max: Math.max(total, 1), value: done }), ` ${done} / ${total}`);
}

const RUN_COLUMNS = ['Run', 'Task', 'Status', 'Progress', 'Spend / max', 'Time left'];

function showRuns() {
  const body = h('tbody');
  view(
    'runs',
    h('h1', {}, 'Task runs'),
    h('div', { class: 'scroll' }, h('table', { id: 'runs', class: 'stacking' }, h('thead', {}, h('tr', {}, ...RUN_COLUMNS.map((t) => h('th', {}, t)))), body)),
  );
  poll(3000, async () => {
    const { runs } = await api('GET', '/api/v1/runs');
    // Each cell carries its column's name: on a narrow screen a row is stacked as a card of labelled lines.
    const cells = (...values) => values.map((value, i) => h('td', { 'data-label': RUN_COLUMNS[i] }, value));
    body.replaceChildren(
      ...runs.map((run) =>
        h(
          'tr',
          { dataset: { runId: run.runId } },
          ...cells(
            h('a', { href: `#/runs/${encodeURIComponent(run.runId)}` }, run.runId),
            run.taskName,
            run.status,
            progressOf(run),
            `${money(run.spend)} / ${money(run.maxSpend)}`,
            duration(run.secondsLeft),
          ),
        ),
      ),
    );
    if (runs.length === 0) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No runs yet: launch one with `hitloop launch <config.yaml>`.')));
  });
}

const LIMIT_KEYS = ['max_num_concurrent_units', 'allowed_concurrent', 'maximum_units_per_worker', 'task_reward', 'task_lifetime_seconds'];

function showRun(runId) {
  const path = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const title = h('h1', {}, `Run ${runId}`);
  const stats = h('div', { class: 'stats', id: 'run-stats' });
  const counts = h('dl', { class: 'kv', id: 'unit-counts' });
  const limitsError = h('p', { class: 'error', id: 'limits-error', role: 'alert' });
  const inputs = Object.fromEntries(LIMIT_KEYS.map((key) => [key, h('input', { type: 'number', name: key, id: `limit-${key}`, min: 0, step: key === 'task_reward' ? 'any' : 1 })]));
  let limitsShown = false;
  const limitsForm = h(
    'form',
    { id: 'limits', class: 'card', onsubmit: saveLimits },
    h('h2', {}, 'Caps (live)'),
    ...LIMIT_KEYS.map((key) => h('label', {}, key.replaceAll('_', ' '), inputs[key])),
    h('div', {}, h('button', { type: 'submit', id: 'save-limits' }, 'Save caps')),
    limitsError,
  );
  let current = null;
  async function saveLimits(event) {
    event.preventDefault();
    limitsError.textContent = '';
    const change = {};
    for (const key of LIMIT_KEYS) {
      const value = inputs[key].value;
      if (value !== '' && current?.limits && Number(value) !== current.limits[key]) change[key] = Number(value);
    }
    if (Object.keys(change).length === 0) {
      limitsError.textContent = 'Nothing changed: edit a cap first.';
      return;
    }
    try {
      const { limits } = await api('PATCH', `${path}/limits`, change);
      for (const key of LIMIT_KEYS) inputs[key].value = limits[key];
      flash(`Caps saved: ${Object.entries(change).map(([k, v]) => `${k} = ${v}`).join(', ')}.`);
    } catch (err) {
      limitsError.textContent = err.message;
    }
  }
  const shutdownButton = h('button', { type: 'button', class: 'danger', id: 'shutdown', onclick: shutdown }, 'Shut down');
  async function shutdown() {
    if (!window.confirm(`Shut down run ${runId}? Units not yet taken are expired.`)) return;
    shutdownButton.disabled = true;
    try {
      const run = await api('POST', `${path}/shutdown`, {});
      flash(`Run ${runId} is ${run.status}.`);
    } catch (err) {
      flash(err.message, 'error');
      shutdownButton.disabled = false;
    }
  }
  const exportLinks = h(
    'p',
    {},
    'Export: ',
    h('a', { href: `${path}/export?format=jsonl`, download: `${runId}.jsonl`, id: 'export-jsonl' }, 'JSON Lines'),
    ' · ',
    h('a', { href: `${path}/export?format=csv`, download: `${runId}.csv`, id: 'export-csv' }, 'CSV'),
  );
  view(
    'run',
    h('p', {}, h('a', { href: '#/runs' }, '← Runs')),
    title,
    stats,
    h('p', {}, h('a', { href: `#/runs/${encodeURIComponent(runId)}/review`, id: 'review-link' }, 'Review submitted units'), ' '),
    exportLinks,
    h('h2', {}, 'Units by status'),
    counts,
    limitsForm,
    h('div', { class: 'card' }, h('h2', {}, 'Shut down'), h('p', { class: 'muted' }, 'Expires what is left and waits for work in flight.'), shutdownButton),
  );
  poll(1500, async () => {
    const run = await api('GET', path);
    current = run;
    title.textContent = run.taskTitle ? `${run.taskTitle} (${run.runId})` : `Run ${run.runId}`;
    stats.replaceChildren(
      h('div', {}, 'Status', h('b', { id: 'run-status' }, run.status)),
      h('div', {}, 'Done', h('b', { id: 'run-progress', dataset: { done: run.doneUnits, total: run.totalUnits } }, `${run.doneUnits} / ${run.totalUnits}`)),
      h('div', {}, 'Spend / max', h('b', {}, `${money(run.spend)} / ${money(run.maxSpend)}`)),
      h('div', {}, 'Time left', h('b', {}, duration(run.secondsLeft))),
    );
    counts.replaceChildren(...Object.entries(run.units).flatMap(([status, n]) => [h('dt', {}, status), h('dd', {}, String(n))]));
    if (run.failureReason) stats.append(h('div', { class: 'error' }, 'Failure', h('b', {}, run.failureReason)));
    limitsForm.hidden = !run.limits;
    shutdownButton.disabled = !run.limits;
    if (run.limits && !limitsShown) {
      for (const key of LIMIT_KEYS) inputs[key].value = run.limits[key];
      limitsShown = true;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Review
// ---------------------------------------------------------------------------------------------

const DECISION_LABEL = { approve: 'Approve', reject: 'Reject', soft_reject: 'Soft-reject' };
const DECISION_DONE = { approve: 'Approved', reject: 'Rejected', soft_reject: 'Soft-rejected' };

function showReview(runId) {
  const base = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const list = h('div', { id: 'units' });
  const info = h('p', { class: 'muted', id: 'review-info' });
  const workerFilter = h('input', { type: 'text', id: 'worker-filter', placeholder: 'worker id (all when empty)' });
  const statusFilter = h(
    'select',
    { id: 'status-filter' },
    h('option', { value: 'awaiting' }, 'awaiting review'),
    h('option', { value: 'reviewed' }, 'reviewed'),
    h('option', { value: 'all' }, 'all'),
  );
  const groupBy = h('select', { id: 'group-by', onchange: () => ((offset = 0), load()) }, h('option', { value: 'item' }, 'item'), h('option', { value: 'worker' }, 'worker'));
  let units = [];
  let workers = new Map();
  let selected = 0;
  let offset = 0;
  const pageSize = 50;
  let more = false;

  async function load() {
    const query = new URLSearchParams({ status: statusFilter.value, by: groupBy.value, offset: String(offset), limit: String(pageSize) });
    if (workerFilter.value.trim()) query.set('worker', workerFilter.value.trim());
    const page = await api('GET', `${base}/units?${query}`);
    units = page.units;
    workers = new Map(page.workers.map((w) => [w.workerId, w]));
    more = page.more;
    selected = Math.min(selected, Math.max(units.length - 1, 0));
    render();
  }

  function history(workerId) {
    const w = workers.get(workerId);
    if (!w) return '';
    const rate = w.approvalRate === null ? 'no reviews yet' : `${Math.round(w.approvalRate * 100)}% approved`;
    const gold = w.goldAccuracy === null ? '' : ` · gold ${Math.round(w.goldAccuracy * 100)}% of ${w.goldScored}`;
    return `${w.submitted} submitted · ${rate}${gold}${w.blocked ? ' · blocked' : ''}`;
  }

  function render() {
    info.textContent = units.length
      ? `Units ${offset + 1}–${offset + units.length}${more ? ' (more on the next page)' : ''}`
      : 'No units here.';
    let lastGroup = null;
    const cards = [];
    units.forEach((unit, i) => {
      const group = groupBy.value === 'worker' ? `Worker ${unit.providerWorkerId} (${unit.workerId})` : `Item ${unit.assignmentIndex + 1}`;
      if (group !== lastGroup) {
        cards.push(h('h2', { class: 'group' }, group));
        lastGroup = group;
      }
      cards.push(unitCard(unit, i));
    });
    list.replaceChildren(...cards);
    list.querySelector('.unit.selected')?.scrollIntoView({ block: 'nearest' });
  }

  function unitCard(unit, index) {
    const status = h('p', { class: 'unit-status' }, unit.review ? `Reviewed: ${unit.review.decision}` : `Status: ${unit.unitStatus}`);
    const bonuses = unit.bonuses.map((b) => h('p', { class: 'bonus' }, `Bonus ${money(b.amount)} (${b.status}): ${b.reason}`));
    const awaiting = unit.agentStatus === 'completed';
    const card = h(
      'article',
      {
        class: `card unit${index === selected ? ' selected' : ''}`,
        dataset: { unitId: unit.unitId, index: String(index) },
        // Clicks on the card's own controls are theirs: re-rendering here would drop a form being submitted.
        onclick: (event) => event.target.closest('button, form, input, a, select, textarea') || select(index),
      },
      h('h3', {}, `Unit ${unit.unitId}`, unit.unitKind !== 'normal' ? ` (${unit.unitKind})` : ''),
      h('p', { class: 'muted' }, `Worker ${unit.providerWorkerId} at ${unit.provider} — ${history(unit.workerId)}`),
      unit.view
        ? h('div', { class: 'grid' }, h('div', { class: 'review-item' }, h('h4', {}, 'Item'), ...blocksOf(unit.view, 'item')), h('div', { class: 'review-answer' }, h('h4', {}, 'Submission'), ...blocksOf(unit.view, 'answer')))
        : h('div', { class: 'grid' }, h('div', {}, h('h4', {}, 'Item'), kv(unit.assignmentData)), h('div', {}, h('h4', {}, 'Submission'), kv(unit.data))),
      status,
      ...bonuses,
      h(
        'div',
        { class: 'actions' },
        ...Object.entries(DECISION_LABEL).map(([decision, label]) =>
          h('button', { type: 'button', class: decision === 'approve' ? '' : 'secondary', disabled: !awaiting, dataset: { action: decision }, onclick: () => decide(index, decision) }, label),
        ),
        h('button', { type: 'button', class: 'secondary', dataset: { action: 'bonus' }, onclick: () => openBonus(index) }, 'Bonus…'),
      ),
    );
    return card;
  }

  /** Moves the selection without rebuilding the cards (an open bonus form stays as it is). */
  function select(index) {
    if (index < 0 || index >= units.length) return;
    selected = index;
    for (const card of list.querySelectorAll('.unit')) card.classList.toggle('selected', Number(card.dataset.index) === selected);
    list.querySelector('.unit.selected')?.scrollIntoView({ block: 'nearest' });
  }

  async function decide(index, decision) {
    const unit = units[index];
    if (!unit || unit.agentStatus !== 'completed') return;
    // The key names the operation itself: pressing again, or a retry, is the same request.
    const requestKey = `${decision}-${unit.unitId}`;
    try {
      const { results } = await api('POST', `${base}/reviews`, { decision, unitIds: [unit.unitId], requestKey });
      const repeated = results[0]?.repeated;
      unit.agentStatus = decision === 'approve' ? 'approved' : decision;
      unit.review = { decision };
      flash(`${DECISION_DONE[decision]} unit ${unit.unitId}${repeated ? ' (already done: nothing was done twice)' : ''}.`);
      if (index === selected && selected < units.length - 1) selected++;
      render();
    } catch (err) {
      flash(err.message, 'error');
    }
  }

  function openBonus(index) {
    const unit = units[index];
    if (!unit) return;
    const card = list.querySelector(`[data-unit-id="${CSS.escape(unit.unitId)}"]`);
    if (!card || card.querySelector('form.bonus-form')) return;
    // One key for this bonus, fixed now: a double click or a retry of "Pay" pays once.
    const requestKey = newKey(`bonus-${unit.unitId}`);
    const amount = h('input', { type: 'number', name: 'amount', min: 0.01, step: 0.01, value: '0.50', required: true });
    const reason = h('input', { type: 'text', name: 'reason', value: 'careful work', required: true, maxlength: 1000 });
    const error = h('p', { class: 'error', role: 'alert' });
    const pay = h('button', { type: 'submit', dataset: { action: 'pay-bonus' } }, 'Pay bonus');
    const form = h('form', { class: 'bonus-form', onsubmit: submit }, h('label', {}, 'Amount', amount), h('label', {}, 'Reason (shown to the worker)', reason), pay, error);
    async function submit(event) {
      event.preventDefault();
      error.textContent = '';
      try {
        const result = await api('POST', `${base}/bonuses`, { unitId: unit.unitId, amount: Number(amount.value), reason: reason.value, requestKey });
        flash(`Bonus of ${money(result.amount)} on unit ${unit.unitId}${result.repeated ? ' was already paid: paid once' : ' paid'}.`);
        await load();
      } catch (err) {
        error.textContent = err.message;
      }
    }
    card.append(form);
    amount.focus();
  }

  /** Every unit awaiting review (narrowed by the worker filter), a page of 200 per request. */
  async function bulk(decision) {
    if (!window.confirm(`${DECISION_LABEL[decision]} every unit awaiting review${workerFilter.value.trim() ? ` from worker ${workerFilter.value.trim()}` : ''}?`)) return;
    const key = newKey(`bulk-${decision}`);
    let done = 0;
    let pageNumber = 0;
    try {
      for (;;) {
        pageNumber++;
        const query = new URLSearchParams({ status: 'awaiting', offset: '0', limit: '200' });
        if (workerFilter.value.trim()) query.set('worker', workerFilter.value.trim());
        const page = await api('GET', `${base}/units?${query}`);
        if (page.units.length === 0) break;
        await api('POST', `${base}/reviews`, { decision, unitIds: page.units.map((u) => u.unitId), requestKey: `${key}-p${pageNumber}` });
        done += page.units.length;
        flash(`${DECISION_DONE[decision]} ${done} units…`);
        if (!page.more) break;
      }
      flash(`${DECISION_DONE[decision]} ${done} units.`);
    } catch (err) {
      flash(`${err.message} (${done} units were done before this)`, 'error');
    }
    await load();
  }

  const onKey = (event) => {
    if (event.target instanceof window.HTMLInputElement || event.target instanceof window.HTMLTextAreaElement || event.target instanceof window.HTMLSelectElement) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = { j: () => select(selected + 1), k: () => select(selected - 1), a: () => decide(selected, 'approve'), r: () => decide(selected, 'reject'), s: () => decide(selected, 'soft_reject'), b: () => openBonus(selected) };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    void action();
  };

  const pager = h(
    'p',
    {},
    h('button', { type: 'button', class: 'secondary', onclick: () => ((offset = Math.max(0, offset - pageSize)), load()) }, '← Previous'),
    ' ',
    h('button', { type: 'button', class: 'secondary', onclick: () => more && ((offset += pageSize), load()) }, 'Next →'),
  );
  view(
    'review',
    h('p', {}, h('a', { href: `#/runs/${encodeURIComponent(runId)}` }, `← Run ${runId}`)),
    h('h1', {}, `Review ${runId}`),
    h(
      'div',
      { class: 'card' },
      h('label', {}, 'Show', statusFilter),
      h('label', {}, 'Worker', workerFilter),
      h('label', {}, 'Group by', groupBy),
      h('button', { type: 'button', class: 'secondary', onclick: () => ((offset = 0), load()) }, 'Apply'),
      h('p', {}, h('button', { type: 'button', id: 'bulk-approve', onclick: () => bulk('approve') }, 'Approve all awaiting'), ' ', h('button', { type: 'button', class: 'secondary', id: 'bulk-soft-reject', onclick: () => bulk('soft_reject') }, 'Soft-reject all awaiting')),
      h('p', { class: 'keys' }, h('kbd', {}, 'j'), '/', h('kbd', {}, 'k'), ' next/previous · ', h('kbd', {}, 'a'), ' approve · ', h('kbd', {}, 'r'), ' reject · ', h('kbd', {}, 's'), ' soft-reject · ', h('kbd', {}, 'b'), ' bonus'),
    ),
    info,
    list,
    pager,
  );
  // After view(): it drops the previous view's handler.
  keyHandler = onKey;
  document.addEventListener('keydown', keyHandler);
  load().catch((err) => flash(err.message, 'error'));
}

// ---------------------------------------------------------------------------------------------
// Qualifications and workers
// ---------------------------------------------------------------------------------------------

function workerFields() {
  return { provider: h('input', { type: 'text', name: 'provider', value: 'mock', required: true }), worker: h('input', { type: 'text', name: 'worker', required: true }) };
}

function showQualifications() {
  const qualBody = h('tbody');
  const grantBody = h('tbody');
  async function load() {
    const { qualifications, grants } = await api('GET', '/api/v1/qualifications');
    qualBody.replaceChildren(...qualifications.map((q) => h('tr', {}, h('td', {}, q.name), h('td', {}, q.description ?? ''), h('td', {}, String(q.grants)))));
    grantBody.replaceChildren(...grants.map((g) => h('tr', {}, h('td', {}, g.qualification), h('td', {}, `${g.provider} ${g.providerWorkerId}`), h('td', {}, String(g.value)))));
  }
  const name = h('input', { type: 'text', name: 'name', required: true });
  const description = h('input', { type: 'text', name: 'description' });
  const createForm = h(
    'form',
    { class: 'card', id: 'create-qualification', onsubmit: (e) => act(e, () => api('POST', '/api/v1/qualifications', { name: name.value, description: description.value || undefined }), 'Qualification created.') },
    h('h2', {}, 'New qualification'),
    h('label', {}, 'Name', name),
    h('label', {}, 'Description', description),
    h('button', { type: 'submit' }, 'Create'),
  );
  const grant = { ...workerFields(), qualification: h('input', { type: 'text', name: 'qualification', required: true }), value: h('input', { type: 'number', name: 'value', value: 1, step: 1, required: true }) };
  const grantForm = h(
    'form',
    { class: 'card', id: 'grant', onsubmit: (e) => act(e, () => api('POST', `/api/v1/qualifications/${encodeURIComponent(grant.qualification.value)}/grants`, { provider: grant.provider.value, providerWorkerId: grant.worker.value, value: Number(grant.value.value) }), 'Granted.') },
    h('h2', {}, 'Grant or revoke'),
    h('label', {}, 'Qualification', grant.qualification),
    h('label', {}, 'Provider', grant.provider),
    h('label', {}, 'Worker id', grant.worker),
    h('label', {}, 'Value', grant.value),
    h('button', { type: 'submit' }, 'Grant'),
    ' ',
    h('button', { type: 'button', class: 'secondary', onclick: (e) => act(e, () => api('POST', `/api/v1/qualifications/${encodeURIComponent(grant.qualification.value)}/revocations`, { provider: grant.provider.value, providerWorkerId: grant.worker.value }), 'Revoked.') }, 'Revoke'),
  );
  async function act(event, call, done) {
    event.preventDefault();
    try {
      await call();
      flash(done);
      await load();
    } catch (err) {
      flash(err.message, 'error');
    }
  }
  view(
    'qualifications',
    h('h1', {}, 'Qualifications'),
    h('div', { class: 'scroll' }, h('table', { id: 'qualifications' }, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Description'), h('th', {}, 'Workers'))), qualBody)),
    createForm,
    grantForm,
    h('h2', {}, 'Grants'),
    h('div', { class: 'scroll' }, h('table', { id: 'grants' }, h('thead', {}, h('tr', {}, h('th', {}, 'Qualification'), h('th', {}, 'Worker'), h('th', {}, 'Value'))), grantBody)),
  );
  load().catch((err) => flash(err.message, 'error'));
}

function showWorkers() {
  const fields = workerFields();
  const reason = h('input', { type: 'text', name: 'reason' });
  async function setBlocked(event, blocked) {
    event.preventDefault();
    try {
      const result = await api('POST', '/api/v1/workers/blocks', { provider: fields.provider.value, providerWorkerId: fields.worker.value, blocked, ...(reason.value ? { reason: reason.value } : {}) });
      flash(`Worker ${result.worker.providerWorkerId} is ${result.blocked ? 'blocked' : 'not blocked'}${result.changed ? '' : ' (it already was)'}.`);
    } catch (err) {
      flash(err.message, 'error');
    }
  }
  view(
    'workers',
    h('h1', {}, 'Workers'),
    h('p', { class: 'muted' }, 'A worker\'s history (approval rate, gold accuracy) is shown beside their work on each run\'s review page.'),
    h(
      'form',
      { class: 'card', id: 'block', onsubmit: (e) => setBlocked(e, true) },
      h('h2', {}, 'Block or unblock'),
      h('label', {}, 'Provider', fields.provider),
      h('label', {}, 'Worker id', fields.worker),
      h('label', {}, 'Reason', reason),
      h('button', { type: 'submit', class: 'danger' }, 'Block'),
      ' ',
      h('button', { type: 'button', class: 'secondary', onclick: (e) => setBlocked(e, false) }, 'Unblock'),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Routing by the URL's hash
// ---------------------------------------------------------------------------------------------

function route() {
  if (!csrfToken) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'runs' && parts[1] && parts[2] === 'review') showReview(parts[1]);
  else if (parts[0] === 'runs' && parts[1]) showRun(parts[1]);
  else if (parts[0] === 'qualifications') showQualifications();
  else if (parts[0] === 'workers') showWorkers();
  else showRuns();
}

window.addEventListener('hashchange', () => {
  flash('');
  route();
});

api('GET', '/api/v1/session').then(
  (session) => {
    csrfToken = session.csrfToken;
    nav.hidden = false;
    route();
  },
  (err) => showLogin(err.status === 401 ? '' : err.message),
);
