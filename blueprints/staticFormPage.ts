/**
 * The task page of the `static-form` blueprint, rendered once per run by the gateway.
 *
 * The form (from the run's `fields`, or the run's custom HTML `template`) is rendered here; the
 * unit's data arrives over the WebSocket and is filled in by gateway/assets/static-form.js, which
 * also drives the page's states through `data-state` on <body>: connecting, onboarding (the run's
 * onboarding form, when the worker has not passed it yet), waiting, working, submitting, submitted,
 * no_work (with the refusal reason), reconnecting, ended, error.
 *
 * Custom templates: the file's HTML goes inside the page's <form>; its named inputs are submitted
 * as they are; text `{{key}}` and elements with `data-hitloop-field="key"` show the unit's data.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isDisplayField, type StaticFormField, type StaticFormOptions } from './staticForm.ts';
import type { TaskPageInfo } from './types.ts';

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function labelOf(field: StaticFormField): string {
  return field.label ?? field.name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function helpOf(field: StaticFormField, id: string): { attr: string; html: string } {
  if (!field.help) return { attr: '', html: '' };
  return { attr: ` aria-describedby="${id}-help"`, html: `<p id="${id}-help" class="hl-help">${escapeHtml(field.help)}</p>` };
}

/** A field that shows the unit's data: the URL comes from the data and is set by the page's script. */
function renderDisplayField(field: StaticFormField, id: string): string {
  const source = escapeHtml(field.source ?? field.name);
  const label = escapeHtml(labelOf(field));
  const help = helpOf(field, id);
  const common = `id="${id}" data-display="${field.type}" data-source="${source}"`;
  switch (field.type) {
    case 'image':
      return `<figure class="hl-field hl-display">${`<img ${common} alt="${label}"${help.attr}>`}<figcaption>${label}</figcaption>${help.html}</figure>`;
    case 'audio':
      return `<div class="hl-field hl-display"><span class="hl-label">${label}</span><audio ${common} controls preload="metadata"${help.attr}></audio>${help.html}</div>`;
    case 'video':
      return `<div class="hl-field hl-display"><span class="hl-label">${label}</span><video ${common} controls preload="metadata" playsinline${help.attr}></video>${help.html}</div>`;
    default:
      return `<div class="hl-field hl-display"><a ${common} target="_blank" rel="noopener noreferrer"${help.attr}>${label}</a>${help.html}</div>`;
  }
}

function renderChoices(field: StaticFormField, id: string, name: string, common: string): string {
  const kind = field.type === 'radio' ? 'radio' : 'checkbox';
  const help = helpOf(field, id);
  const choices = (field.options ?? [])
    .map(
      (o, i) =>
        `<label class="hl-choice"><input type="${kind}" id="${id}-${i}" name="${name}" value="${escapeHtml(o)}"${kind === 'radio' && field.required && i === 0 ? ' required' : ''}> ${escapeHtml(o)}</label>`,
    )
    .join('');
  return `<fieldset class="hl-field hl-choices" ${common}${help.attr}><legend>${escapeHtml(labelOf(field))}${field.required ? ' <span class="hl-required" aria-hidden="true">*</span>' : ''}</legend>${choices}${help.html}</fieldset>`;
}

function renderField(field: StaticFormField, idPrefix = 'hl-field-'): string {
  const id = `${idPrefix}${field.name}`;
  if (isDisplayField(field)) return renderDisplayField(field, id);
  const name = escapeHtml(field.name);
  const common = `id="${id}" name="${name}" data-type="${field.type}" data-required="${field.required}"`;
  const required = field.required && field.type !== 'checkbox' ? ' required' : '';
  const label = `<label for="${id}">${escapeHtml(labelOf(field))}${field.required && field.type !== 'checkbox' ? ' <span class="hl-required" aria-hidden="true">*</span>' : ''}</label>`;
  const help = helpOf(field, id);
  switch (field.type) {
    case 'hidden':
      return `<input type="hidden" ${common} value="${escapeHtml(field.value ?? '')}" data-template-value="${escapeHtml(field.value ?? '')}">`;
    case 'radio':
    case 'checkboxes':
      return renderChoices(field, id, name, `id="${id}" data-type="${field.type}" data-name="${name}" data-required="${field.required}"`);
    case 'textarea':
      return `<div class="hl-field">${label}<textarea ${common} rows="5" maxlength="${field.max_length}"${required}${help.attr}></textarea>${help.html}</div>`;
    case 'number': {
      const bounds = `${field.min !== undefined ? ` min="${field.min}"` : ''}${field.max !== undefined ? ` max="${field.max}"` : ''}`;
      return `<div class="hl-field">${label}<input type="number" step="any" ${common}${bounds}${required}${help.attr}>${help.html}</div>`;
    }
    case 'checkbox':
      return `<div class="hl-field hl-checkbox"><input type="checkbox" ${common}${help.attr}>${label}${help.html}</div>`;
    case 'select': {
      const options = (field.options ?? []).map((o) => `<option value="${escapeHtml(o)}">${escapeHtml(o)}</option>`).join('');
      return `<div class="hl-field">${label}<select ${common}${required}${help.attr}><option value="">Choose…</option>${options}</select>${help.html}</div>`;
    }
    default:
      return `<div class="hl-field">${label}<input type="text" ${common} maxlength="${field.max_length}"${required}${help.attr}>${help.html}</div>`;
  }
}

const formatReward = (reward: number): string => `$${reward.toFixed(reward < 1 && Math.round(reward * 100) !== reward * 100 ? 3 : 2)}`;

function renderTaskHeader(task: TaskPageInfo): string {
  const facts = [
    task.reward !== undefined ? `<span id="hl-reward">Pays ${formatReward(task.reward)} per unit</span>` : '',
    task.assignmentDurationSeconds ? `<span id="hl-time-left" data-seconds="${task.assignmentDurationSeconds}">${Math.round(task.assignmentDurationSeconds / 60)} minutes per unit</span>` : '',
    '<span id="hl-item" hidden></span>',
  ].filter(Boolean);
  return `<h1 id="hl-title">${escapeHtml(task.title)}</h1>
    ${task.description ? `<p id="hl-description" class="hl-description">${escapeHtml(task.description)}</p>` : ''}
    <p class="hl-facts">${facts.join('')}</p>`;
}

/** The custom template's HTML; a relative path is taken from the gateway's working directory. */
function readTemplate(file: string): string {
  const resolved = path.resolve(file);
  try {
    return readFileSync(resolved, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read the static-form template ${resolved} (blueprint.template): ${(err as Error).message}; ` +
        'give an absolute path, or start the gateway in the directory the path is relative to',
      { cause: err },
    );
  }
}

export function renderStaticFormPage({ options, runId, task = { title: 'Task' } }: { options: StaticFormOptions; runId: string; task?: TaskPageInfo }): string {
  const template = options.template ? readTemplate(options.template) : null;
  const formBody = template !== null ? `<div id="hl-template">${template}</div>` : (options.fields ?? []).map((f) => renderField(f)).join('\n');
  const onboarding = options.onboarding
    ? `<form id="hl-onboarding-form" class="hl-form hl-when-onboarding" autocomplete="off">
    <p class="hl-onboarding-intro">Before you start, answer these questions. They decide whether this task is open to you.</p>
${options.onboarding.fields.map((f) => renderField(f, 'hl-ob-field-')).join('\n')}
    <p id="hl-onboarding-error" class="hl-form-error" role="alert"></p>
    <div class="hl-actions"><button type="submit" id="hl-onboarding-submit">Submit answers</button></div>
  </form>`
    : '';
  const instructions = options.instructions
    ? `<section id="hl-instructions" class="hl-instructions">${escapeHtml(options.instructions).replace(/\n/g, '<br>')}</section>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(task.title)}</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/hitloop.css">
</head>
<body data-state="connecting" data-run-id="${escapeHtml(runId)}" data-template="${template ? 'custom' : 'fields'}">
<main class="hl-page">
  <header class="hl-header">
    ${renderTaskHeader(task)}
    <p id="hl-status" class="hl-status" role="status" aria-live="polite">Connecting…</p>
  </header>
  ${instructions}
  <section id="hl-message" class="hl-message" aria-live="polite"></section>
  <section id="hl-unit" class="hl-unit hl-when-assigned">
    <dl id="hl-data" class="hl-data"></dl>
  </section>
  ${onboarding}
  <form id="hl-form" class="hl-form hl-when-assigned" autocomplete="off">
${formBody}
    <p id="hl-form-error" class="hl-form-error" role="alert"></p>
    <div class="hl-actions">
      <button type="submit" id="hl-submit">Submit</button>
      <button type="button" id="hl-return" class="hl-secondary">Return this unit</button>
    </div>
  </form>
  <div class="hl-actions hl-when-idle">
    <button type="button" id="hl-more">Look for work again</button>
  </div>
</main>
<script type="module" src="/assets/static-form.js"></script>
</body>
</html>
`;
}
