/* global document, location, sessionStorage, FormData, Node, NodeFilter, URLSearchParams, URL, setInterval, clearInterval */
/**
 * The static-form task page (rendered by blueprints/staticFormPage.ts): shows the unit's data, lets
 * the worker fill and submit the form, and shows the page's state in `body[data-state]`.
 */
import { HitloopClient } from './hitloop-client.js';
import { isMTurkPreview, postMTurkExternalSubmit } from './mturk.js';

const body = document.body;
const runId = body.dataset.runId;
const form = document.getElementById('hl-form');
const statusLine = document.getElementById('hl-status');
const message = document.getElementById('hl-message');
const formError = document.getElementById('hl-form-error');
const submitButton = document.getElementById('hl-submit');
const returnButton = document.getElementById('hl-return');
const moreButton = document.getElementById('hl-more');
const onboardingForm = document.getElementById('hl-onboarding-form');
const onboardingError = document.getElementById('hl-onboarding-error');
const templateBox = document.getElementById('hl-template');
const templateHtml = templateBox ? templateBox.innerHTML : '';

const REASONS = {
  blocked: 'You are blocked from this task.',
  not_qualified: 'You do not have the qualifications this task requires.',
  too_many_concurrent: 'You already hold as many units of this task as allowed at once.',
  max_for_task: 'You have done as many units of this task as one worker may.',
  no_units_available: 'There is no work available for you right now.',
  run_not_running: 'This task is not taking workers any more.',
};
/** What the worker reads for each error the gateway may answer: never the code or its internals. */
const ERRORS = {
  bad_worker_identity: 'This link is not valid for this task run. Open the task again from the site that sent you here.',
  unknown_run: 'This task does not exist (any more). Check the link you were given.',
  invalid_token: 'Your place in this task could not be restored. Look for work again.',
  token_mismatch: 'Your place in this task could not be restored. Look for work again.',
  agent_ended: 'Your time on this unit has ended.',
  not_in_task: 'This unit is not open for answers right now.',
  invalid_submission: 'Some answers are missing or not valid; check the form and submit again.',
  already_submitted: 'This unit was already submitted. Thank you!',
  rate_limited: 'Too many actions at once; wait a moment and try again.',
  temporal_unavailable: 'The task server is busy or restarting. Your answers are kept; try again in a minute.',
  internal: 'Something went wrong on our side. Your answers are kept; try again in a minute.',
};
const FALLBACK_ERROR = 'Something went wrong. Your answers are kept; try again in a minute, or reload the page.';
/** A sentence for an error: the worker-facing text of its code, or for a form error the server's field list. */
function sentenceFor(event) {
  if (event.code === 'invalid_submission' && event.message) return `${ERRORS.invalid_submission} (${event.message})`;
  return ERRORS[event.code] ?? FALLBACK_ERROR;
}

const ENDINGS = {
  completed: 'Thank you! Your work was submitted.',
  approved: 'Thank you! Your work was submitted and approved.',
  rejected: 'Your work on this unit was reviewed.',
  soft_rejected: 'Your work on this unit was reviewed.',
  disconnect: 'You were away longer than allowed, so this unit went back to the pool.',
  timeout: 'The time for this unit ran out, so it went back to the pool.',
  returned: 'You returned this unit.',
  expired: 'This task was closed before you submitted.',
  partner_disconnect: 'Your partner left, so this unit ended.',
};

/** The page's state: what the worker sees (CSS shows and hides sections by it). */
let state = 'connecting';
function setState(next, status, detail) {
  state = next;
  body.dataset.state = next;
  statusLine.textContent = status;
  message.textContent = detail ?? '';
  const editable = next === 'working';
  for (const el of form.elements) el.disabled = !editable;
  submitButton.disabled = !editable;
  returnButton.disabled = !editable;
  if (onboardingForm) for (const el of onboardingForm.elements) el.disabled = next !== 'onboarding';
}

const params = Object.fromEntries(new URLSearchParams(location.search));
const storageKey = `hitloop:${runId}:${location.search}`;
const store = {
  load() {
    try {
      return JSON.parse(sessionStorage.getItem(storageKey) ?? 'null');
    } catch {
      return null;
    }
  },
  save(value) {
    try {
      sessionStorage.setItem(storageKey, JSON.stringify(value));
    } catch {
      // Private mode or full storage: the page still works, a reload just registers again.
    }
  },
};

const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
const client = new HitloopClient({ url: wsUrl, runId, params, store, onEvent });

/** A refused worker who holds a place at their provider is asked to give it back, so someone the run can still serve may take it. */
function giveBackPlease() {
  if (params.PROLIFIC_PID) return ' Please return the study on Prolific so your place goes to someone else.';
  if (params.assignmentId && params.turkSubmitTo && !isMTurkPreview(params)) return ' Please return the HIT on MTurk so your place goes to someone else.';
  return '';
}

function onEvent(event) {
  switch (event.type) {
    case 'connecting':
      setState('connecting', 'Connecting…');
      return;
    case 'reconnecting':
    case 'disconnected':
      if (state !== 'submitted' && state !== 'ended' && state !== 'no_work' && state !== 'error') {
        setState('reconnecting', 'Connection lost. Reconnecting…', 'Your answers on this page are kept.');
      }
      return;
    case 'agent':
      showUnit(event.agent.initData);
      startCountdown(event.agent.agentId);
      onStatus(event.agent.status);
      return;
    case 'status':
      onStatus(event.status, event.payload);
      return;
    case 'onboarding':
      if (!onboardingForm) setState('error', 'This task cannot be shown', 'This task asks for a qualification test this page cannot show. Please contact the requester.');
      else if (state !== 'onboarding_submitting') setState('onboarding', 'Before you start', '');
      return;
    case 'refused':
      setState(
        'no_work',
        'No work available',
        `${REASONS[event.reason] ?? 'This task is not available to you right now.'}${giveBackPlease()}`,
      );
      body.dataset.reason = event.reason;
      return;
    case 'ended':
      if (event.status === 'completed' || event.status === 'approved') onSubmitted(event.status);
      else setState('ended', 'This unit has ended', ENDINGS[event.status] ?? 'This unit is closed.');
      return;
    case 'error':
      onError(event);
      return;
    case 'replaced':
      setState('ended', 'Open in another window', 'This unit is open in another window or tab; carry on there.');
      return;
    default:
      return;
  }
}

/**
 * Providers that take workers back to their own site (Prolific's completion URL) put it in the task
 * link; the gateway serves this page only when that address is signed for this run.
 */
const completionUrl = params.hitloop_done && /^https?:\/\//.test(params.hitloop_done) ? params.hitloop_done : null;

/** The work is stored: say so, and tell the provider's site where it wants to know (MTurk, Prolific). */
let submittedValues = null;
function onSubmitted(status) {
  setState('submitted', 'Submitted', ENDINGS[status]);
  postMTurkExternalSubmit(params, submittedValues);
  if (!completionUrl) return;
  const link = document.createElement('a');
  link.href = completionUrl;
  link.id = 'hitloop-completion-link';
  link.textContent = 'Continue to finish on your provider';
  message.append(' ', link);
  location.assign(completionUrl);
}

function onStatus(status, payload) {
  if (status === 'in_task') {
    if (state !== 'submitting' && state !== 'submitted') setState('working', 'Your task', '');
  } else if (status === 'accepted' || status === 'waiting' || status === 'none' || status === 'onboarding') {
    setState('waiting', 'Waiting for the task to start…');
  } else if (status === 'completed' || status === 'approved') {
    onSubmitted(status);
  } else if (status === 'submit_refused') {
    setState('ended', 'Submission not accepted', payload?.reason ? `Your answers were not accepted: ${payload.reason}` : 'This unit was no longer yours when the answers arrived.');
  } else {
    setState('ended', 'This unit has ended', ENDINGS[status] ?? 'This unit is closed.');
  }
}

function onError(event) {
  const sentence = sentenceFor(event);
  if (event.code === 'bad_worker_identity' || event.code === 'unknown_run') {
    setState('error', 'This link does not work', sentence);
  } else if ((event.ref === 'submit' || event.ref === 'live') && state === 'onboarding_submitting') {
    setState('onboarding', 'Before you start', '');
    onboardingError.textContent = sentence;
  } else if (event.ref === 'submit' || event.ref === 'live') {
    if (state === 'submitting') setState('working', 'Your task', '');
    formError.textContent = sentence;
  } else if (event.code === 'agent_ended') {
    onStatus(event.status ?? 'expired');
  } else {
    formError.textContent = sentence;
  }
}

/** Only web and data URLs (and relative ones) go into src/href: never `javascript:` from item data. */
function safeUrl(value) {
  if (typeof value !== 'string' || value.trim() === '') return null;
  try {
    const url = new URL(value, location.href);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
    if (url.protocol === 'data:' && /^data:(image|audio|video)\//i.test(value.trim())) return value.trim();
  } catch {
    return null;
  }
  return null;
}
const URL_ATTRIBUTES = new Set(['src', 'href', 'poster', 'action', 'formaction', 'srcset', 'data', 'xlink:href']);
const fill = (template, data, text) => template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, key) => text(data[key] ?? ''));

/** `{{key}}` in attributes of a custom template: set through the DOM (so escaped); URLs must be safe; never in event handlers. */
function fillAttributes(root, data, text) {
  for (const el of root.querySelectorAll('*')) {
    for (const attr of [...el.attributes]) {
      if (!attr.value.includes('{{')) continue;
      const name = attr.name.toLowerCase();
      if (name.startsWith('on')) {
        el.removeAttribute(attr.name);
        continue;
      }
      const value = fill(attr.value, data, text);
      if (URL_ATTRIBUTES.has(name)) {
        const url = safeUrl(value);
        if (url) el.setAttribute(attr.name, url);
        else el.removeAttribute(attr.name);
      } else el.setAttribute(attr.name, value);
    }
  }
}

/** Display fields (image, audio, video, link) get their URL from the unit's data. */
function fillDisplayFields(data) {
  const shown = new Set();
  for (const el of document.querySelectorAll('[data-display]')) {
    const key = el.dataset.source;
    shown.add(key);
    const url = safeUrl(data[key]);
    const attr = el.dataset.display === 'link' ? 'href' : 'src';
    if (url) el.setAttribute(attr, url);
    else el.removeAttribute(attr);
    el.closest('.hl-field')?.toggleAttribute('data-missing', !url);
  }
  for (const el of form.querySelectorAll('input[type="hidden"][data-template-value]')) {
    el.value = fill(el.dataset.templateValue, data, (v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  }
  return shown;
}

/** Time left on the unit, counted from when this page first showed it (kept across reloads). */
let countdown = null;
function startCountdown(agentId) {
  const box = document.getElementById('hl-time-left');
  if (!box) return;
  const seconds = Number(box.dataset.seconds);
  const key = `hitloop:${runId}:started:${agentId}`;
  let started = Number(sessionStorage.getItem(key));
  if (!started) {
    started = Date.now();
    try {
      sessionStorage.setItem(key, String(started));
    } catch {
      // Without storage a reload restarts the count; the server's timer is the one that counts.
    }
  }
  clearInterval(countdown);
  const tick = () => {
    const left = Math.max(0, Math.round(seconds - (Date.now() - started) / 1000));
    box.textContent = `Time left: ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  };
  tick();
  countdown = setInterval(tick, 1000);
}

/**
 * "Item k of up to n": k is this unit's number among the worker's units of the run, n the most they
 * can get (an upper bound: the units may run out first; exact once k reaches it). Hidden when unknown.
 */
function showPosition(position) {
  const box = document.getElementById('hl-item');
  if (!box) return;
  const known = position && Number.isInteger(position.index) && Number.isInteger(position.upTo) && position.upTo >= position.index;
  box.hidden = !known;
  box.textContent = known ? `Item ${position.index} of ${position.index === position.upTo ? '' : 'up to '}${position.upTo}` : '';
}

/** The unit's data: into the placeholders of a custom template, else as a list. */
function showUnit(initData) {
  showPosition(initData && initData.position);
  const data = (initData && initData.data) || {};
  const text = (value) => (typeof value === 'string' ? value : JSON.stringify(value));
  if (body.dataset.template === 'custom') {
    // From the pristine template each time: the page may show several units one after the other.
    templateBox.innerHTML = templateHtml;
    for (const el of templateBox.querySelectorAll('[data-hitloop-field]')) el.textContent = text(data[el.dataset.hitloopField] ?? '');
    fillAttributes(templateBox, data, text);
    const walker = document.createTreeWalker(templateBox, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    for (const node of nodes) {
      if (node.nodeType === Node.TEXT_NODE && node.nodeValue.includes('{{')) {
        node.nodeValue = node.nodeValue.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, key) => text(data[key] ?? ''));
      }
    }
    return;
  }
  const shown = fillDisplayFields(data);
  const list = document.getElementById('hl-data');
  list.replaceChildren();
  for (const [key, value] of Object.entries(data)) {
    if (shown.has(key)) continue;
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.textContent = text(value);
    list.append(dt, dd);
  }
}

/** A form's values, typed as the run's fields say (numbers, booleans); empty optional fields left out. */
function formValues(target) {
  if (target === form && body.dataset.template === 'custom') return Object.fromEntries(new FormData(form));
  const values = {};
  for (const el of target.querySelectorAll('[data-type]')) {
    const type = el.dataset.type;
    if (type === 'radio' || type === 'checkboxes') {
      const chosen = [...el.querySelectorAll('input:checked')].map((input) => input.value);
      if (type === 'checkboxes') {
        if (chosen.length > 0 || el.dataset.required === 'true') values[el.dataset.name] = chosen;
      } else if (chosen.length > 0) values[el.dataset.name] = chosen[0];
      else if (el.dataset.required === 'true') values[el.dataset.name] = '';
      continue;
    }
    if (type === 'checkbox') {
      values[el.name] = el.checked;
      continue;
    }
    if (el.value === '' && el.dataset.required !== 'true') continue;
    values[el.name] = type === 'number' ? Number(el.value) : el.value;
  }
  return values;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state !== 'working') return;
  formError.textContent = '';
  // Read before the inputs are disabled (disabled inputs are not part of FormData).
  const values = formValues(form);
  submittedValues = values;
  setState('submitting', 'Submitting…');
  client.submit(values).then(
    () => {
      // The workflow has it; "submitted" is shown once it is stored (the `completed` status).
      if (state === 'submitting') statusLine.textContent = 'Saving…';
    },
    (error) => {
      setState('working', 'Your task', '');
      formError.textContent = sentenceFor(error);
    },
  );
});

onboardingForm?.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state !== 'onboarding') return;
  onboardingError.textContent = '';
  const values = formValues(onboardingForm);
  setState('onboarding_submitting', 'Checking your answers…');
  // What follows the acknowledgement decides the page: `agent` (passed) or `refused` (not_qualified).
  client.submit(values).catch((error) => {
    setState('onboarding', 'Before you start', '');
    onboardingError.textContent = sentenceFor(error);
  });
});

returnButton.addEventListener('click', () => {
  if (state !== 'working') return;
  setState('ended', 'Returning the unit…');
  client.returnUnit().catch((error) => {
    formError.textContent = sentenceFor(error);
  });
});

moreButton.addEventListener('click', () => {
  form.reset();
  onboardingForm?.reset();
  formError.textContent = '';
  delete body.dataset.reason;
  // Leave the last unit's state first: its `submitted` keeps `in_task` from showing the form, and the
  // next unit's agent packet may already say `in_task` (no `accepted` before it to move the page on).
  setState('connecting', 'Looking for more work…');
  client.registerAgain();
});

if (isMTurkPreview(params)) {
  // MTurk's preview: the task read-only, no registration until the worker accepts the HIT.
  setState('preview', 'Preview', 'This is a preview. Accept the HIT to start working.');
} else {
  client.start();
}
