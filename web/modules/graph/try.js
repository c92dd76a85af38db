// SPDX-License-Identifier: MIT
// web/modules/graph/try.js -- the try chooser: pick a template, set its
// parameters (repository, revision, platforms, suites...), preview the
// resulting graph (POST /templates/{name}/render), toggle individual jobs
// per platform (a job toggled off is created inactive, to backfill later),
// optionally edit the draft as JSON, then submit it.

import { API, link } from './common.js';

export async function tryChooser(root, ctx) {
  const { h, api } = ctx;
  const off = new Set(); // labels toggled off
  let templates = [];
  let rendered = null;

  const select = h('select', { id: 'graph-try-template', class: 'input', 'data-testid': 'graph-try-template' });
  const params = h('div', { class: 'form-grid', 'data-testid': 'graph-try-params' });
  const jobs = h('div', { 'data-testid': 'graph-try-jobs' });
  const msg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'graph-try-error' });
  const draft = h('textarea', { id: 'graph-try-draft', class: 'input mono', rows: '14', 'data-testid': 'graph-try-draft', hidden: true });
  const draftLabel = h('label', { for: 'graph-try-draft', hidden: true }, 'Draft graph (JSON): edit before submitting');
  const preview = h('button', { class: 'btn', type: 'button', 'data-testid': 'graph-try-preview' }, 'Preview graph');
  const editBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'graph-try-edit', disabled: true }, 'Edit draft as JSON');
  const submit = h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'graph-try-submit', disabled: true }, 'Submit');

  root.append(
    h('p', {}, h('a', { href: link({}) }, '← all pushes')),
    h(
      'section',
      { class: 'panel', 'data-testid': 'graph-try' },
      h('h2', {}, 'Try chooser'),
      h('div', { class: 'field' }, h('label', { for: 'graph-try-template' }, 'Template'), select),
      params,
      h('div', { class: 'toolbar' }, preview, editBtn, submit),
      msg,
      jobs,
      draftLabel,
      draft,
    ),
  );

  function values() {
    const t = templates.find((x) => x.name === select.value);
    const out = {};
    for (const [name, p] of Object.entries((t && t.parameters) || {})) {
      const el = params.querySelector(`[data-param="${CSS.escape(name)}"]`);
      if (!el) continue;
      const v = el.value.trim();
      if (p.type === 'list') {
        if (v !== '') out[name] = v.split(/[\s,]+/).filter(Boolean);
      } else if (v !== '') {
        out[name] = v;
      }
    }
    if (off.size) out.inactive = [...off];
    return out;
  }

  function renderParams() {
    const t = templates.find((x) => x.name === select.value);
    params.replaceChildren();
    for (const [name, p] of Object.entries((t && t.parameters) || {})) {
      const id = `graph-try-param-${name}`;
      const def = p.default === undefined ? '' : Array.isArray(p.default) ? p.default.join(' ') : String(p.default);
      params.append(
        h(
          'div',
          { class: 'field' },
          h('label', { for: id }, `${name}${p.required ? ' (required)' : ''}${p.type === 'list' ? ' — space-separated' : ''}`),
          h('input', { id, class: 'input', 'data-param': name, 'data-testid': id, value: def, required: !!p.required }),
        ),
      );
    }
    t && t.description && params.append(h('p', { class: 'small muted field-wide' }, t.description));
    off.clear();
    rendered = null;
    jobs.replaceChildren();
    submit.disabled = editBtn.disabled = true;
    draft.hidden = draftLabel.hidden = true;
  }

  function renderJobs() {
    const byPlatform = new Map();
    for (const t of rendered.tasks || []) {
      const p = t.platform || (t.workerType || '').split('-')[0] || '–';
      if (!byPlatform.has(p)) byPlatform.set(p, []);
      byPlatform.get(p).push(t);
    }
    jobs.replaceChildren(
      h('h3', {}, `${(rendered.tasks || []).length} jobs; untick a job to create it inactive (backfill it later)`),
      ...[...byPlatform].map(([p, ts]) =>
        h(
          'fieldset',
          { class: 'panel', 'data-testid': 'graph-try-platform', 'data-platform': p },
          h('legend', {}, p),
          ts.map((t) => {
            const id = `graph-try-job-${t.label}`.replace(/[^A-Za-z0-9_-]/g, '_');
            const box = h('input', {
              type: 'checkbox',
              id,
              checked: !off.has(t.label),
              'data-testid': 'graph-try-job',
              'data-label': t.label,
              onchange: (ev) => {
                if (ev.target.checked) off.delete(t.label);
                else off.add(t.label);
                doPreview();
              },
            });
            return h('span', { class: 'graph-try-job', style: 'margin-right: 12px; white-space: nowrap;' }, box, ' ', h('label', { for: id }, t.label), t.dependencies && t.dependencies.length ? h('span', { class: 'small muted' }, ` ← ${t.dependencies.join(', ')}`) : '');
          }),
        ),
      ),
    );
  }

  async function doPreview() {
    msg.textContent = '';
    try {
      const res = await api.post(`${API}/templates/${encodeURIComponent(select.value)}/render`, values());
      rendered = res.graph;
      renderJobs();
      draft.value = JSON.stringify(rendered, null, 2);
      if (res.problems && res.problems.length) {
        msg.textContent = `This graph would be refused: ${res.problems.join('; ')}`;
        submit.disabled = true;
      } else {
        submit.disabled = false;
      }
      editBtn.disabled = false;
    } catch (err) {
      rendered = null;
      jobs.replaceChildren();
      submit.disabled = editBtn.disabled = true;
      msg.textContent = api.isAuthError(err) ? `${err.message} — set a token (Set token, top right).` : err.message;
    }
  }

  select.addEventListener('change', renderParams);
  preview.addEventListener('click', doPreview);
  editBtn.addEventListener('click', () => {
    draft.hidden = draftLabel.hidden = !draft.hidden;
  });
  submit.addEventListener('click', async () => {
    msg.textContent = '';
    submit.disabled = true;
    try {
      let res;
      if (!draft.hidden) {
        // the edited draft goes in as it is
        let body;
        try {
          body = JSON.parse(draft.value);
        } catch {
          throw new Error('The draft is not valid JSON.');
        }
        res = await api.post(`${API}/graphs`, body);
      } else {
        res = await api.post(`${API}/templates/${encodeURIComponent(select.value)}/submit`, values());
      }
      location.hash = link({ graph: res.id });
    } catch (err) {
      msg.textContent = api.isAuthError(err)
        ? `${err.message} — set a token with the scope graph:submit (Set token, top right).`
        : err.message;
      submit.disabled = false;
    }
  });

  try {
    const res = await api.get(`${API}/templates`, { signal: ctx.signal });
    templates = (res && res.templates) || [];
  } catch (err) {
    if (err.name !== 'AbortError') ctx.showError(err);
    return;
  }
  if (!templates.length) {
    root.append(h('p', { class: 'notice', 'data-testid': 'graph-try-none' }, 'No templates: add JSON files to templates_dir or PUT /api/v1/graph/templates/{name}.'));
    return;
  }
  select.replaceChildren(...templates.map((t) => h('option', { value: t.name }, `${t.name} (${t.source})`)));
  renderParams();
}
