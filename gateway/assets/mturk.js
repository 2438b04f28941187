/* global document, sessionStorage */
/**
 * What a task page does when MTurk shows it (docs/design.md §5): MTurk loads the ExternalURL with
 * `assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE` while the worker only previews the HIT (the page is
 * read-only and does not register), and with `assignmentId`, `hitId`, `workerId`, `turkSubmitTo`
 * once they accepted. After hitloop has stored the work, the page posts a form to
 * `{turkSubmitTo}/mturk/externalSubmit` so that MTurk marks the assignment submitted.
 */

export const PREVIEW_ASSIGNMENT_ID = 'ASSIGNMENT_ID_NOT_AVAILABLE';

/** True when MTurk shows the HIT before the worker accepted it. */
export function isMTurkPreview(params) {
  return params.assignmentId === PREVIEW_ASSIGNMENT_ID;
}

/**
 * Post the assignment to MTurk once per assignment (a reload of a submitted page does not post
 * again). MTurk wants at least one field beside assignmentId: the answers, and `hitloop=submitted`.
 */
export function postMTurkExternalSubmit(params, values) {
  const { assignmentId, turkSubmitTo } = params;
  if (!assignmentId || !turkSubmitTo || isMTurkPreview(params)) return false;
  const key = `hitloop:mturk-submitted:${assignmentId}`;
  try {
    if (sessionStorage.getItem(key)) return false;
    sessionStorage.setItem(key, '1');
  } catch {
    // No storage: post anyway; MTurk refuses a second submit of one assignment.
  }
  const form = document.createElement('form');
  form.method = 'POST';
  form.action = `${turkSubmitTo.replace(/\/+$/, '')}/mturk/externalSubmit`;
  form.hidden = true;
  const fields = { ...(values ?? {}), hitloop: 'submitted', assignmentId };
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = typeof value === 'string' ? value : JSON.stringify(value);
    form.append(input);
  }
  document.body.append(form);
  form.submit();
  return true;
}
