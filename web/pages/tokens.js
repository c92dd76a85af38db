// SPDX-License-Identifier: MIT
// web/pages/tokens.js -- #/tokens: API tokens for admins. Lists them, creates
// one (the secret is shown once, here, and never again) and revokes them.
// Without an admin token the page says so instead of failing silently.

import { h, replace, fmt, stateBadge } from '../dom.js';

export function title() {
  return 'Tokens';
}

const EXPIRY = [
  ['30d', '30 days'],
  ['1d', '1 day'],
  ['7d', '7 days'],
  ['90d', '90 days'],
  ['365d', '1 year'],
  ['', 'never'],
];

function tokenState(t) {
  if (t.revoked === true || (t.revoked && t.revoked !== false)) return 'revoked';
  const exp = fmt.date(t.expires);
  if (exp && exp.getTime() < Date.now()) return 'expired';
  return 'active';
}

export function mount(main, ctx) {
  const { api } = ctx;
  const listBox = h('div', { 'data-testid': 'token-list' });
  const secretBox = h('div', { 'data-testid': 'token-secret-box', hidden: true });
  const formMsg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'token-form-error' });

  const nameIn = h('input', { id: 'tok-name', name: 'name', class: 'input', required: true, maxlength: '64', autocomplete: 'off', placeholder: 'ci-graph-submit' });
  const scopesIn = h('input', { id: 'tok-scopes', name: 'scopes', class: 'input', required: true, autocomplete: 'off', placeholder: 'graph:submit example:write' });
  const expSel = h('select', { id: 'tok-exp', name: 'expires', class: 'input' }, EXPIRY.map(([v, l]) => h('option', { value: v }, l)));
  const createBtn = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
  const form = h(
    'form',
    { class: 'panel form-grid', 'data-testid': 'token-create-form', 'aria-labelledby': 'tok-create-h' },
    h('h2', { id: 'tok-create-h' }, 'Create a token'),
    h('div', { class: 'field' }, h('label', { for: 'tok-name' }, 'Name'), nameIn),
    h(
      'div',
      { class: 'field field-wide' },
      h('label', { for: 'tok-scopes' }, 'Scopes'),
      scopesIn,
      h('span', { class: 'hint' }, 'Separated by spaces or commas: admin, example:write, graph:*, signing:sign:KEY'),
    ),
    h('div', { class: 'field' }, h('label', { for: 'tok-exp' }, 'Expires after'), expSel),
    h('div', { class: 'field field-actions' }, createBtn),
    formMsg,
  );

  async function load() {
    listBox.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/v1/tokens', { signal: ctx.scope.signal });
      renderList((data && data.tokens) || []);
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (api.isAuthError(err)) {
        replace(
          listBox,
          h(
            'div',
            { class: 'notice', 'data-testid': 'token-admin-needed' },
            h('p', {}, 'Managing tokens needs an admin token. ', h('span', { class: 'muted' }, `(${err.message})`)),
            h('p', { class: 'small muted' }, 'Set one with the Token button at the top right. The first admin token comes from RELENGD_ADMIN_TOKEN or is printed once when relengd first starts.'),
          ),
        );
      } else {
        replace(listBox, h('p', { class: 'notice notice-bad' }, `Tokens could not be listed: ${err.message}`));
      }
    } finally {
      listBox.setAttribute('aria-busy', 'false');
    }
  }

  function renderList(tokens) {
    if (!tokens.length) {
      replace(listBox, h('p', { class: 'muted' }, 'No tokens.'));
      return;
    }
    const rows = tokens.map((t) => {
      const state = tokenState(t);
      return h(
        'tr',
        { 'data-testid': `token-row-${t.id}`, 'data-token-name': t.name },
        h('td', { class: 'mono' }, t.id),
        h('td', {}, t.name),
        h('td', {}, (t.scopes || []).map((s) => h('code', { class: 'scope' }, s))),
        h('td', { class: 'mono small' }, fmt.datetime(t.created)),
        h('td', { class: 'mono small' }, t.expires ? fmt.datetime(t.expires) : 'never'),
        h('td', { class: 'mono small' }, t.last_used ? fmt.datetime(t.last_used) : '–'),
        h('td', {}, stateBadge(state)),
        h(
          'td',
          { class: 'actions' },
          state === 'revoked'
            ? null
            : h(
                'button',
                {
                  type: 'button',
                  class: 'btn btn-sm btn-danger',
                  'data-testid': `token-revoke-${t.id}`,
                  'aria-label': `Revoke token ${t.name}`,
                  onclick: () => revoke(t),
                },
                'Revoke',
              ),
        ),
      );
    });
    replace(
      listBox,
      h(
        'table',
        { class: 'table', 'data-testid': 'token-table' },
        h('caption', { class: 'sr-only' }, 'API tokens'),
        h(
          'thead',
          {},
          h('tr', {}, ['ID', 'Name', 'Scopes', 'Created', 'Expires', 'Last used', 'State', ''].map((c) => h('th', { scope: 'col' }, c))),
        ),
        h('tbody', {}, rows),
      ),
    );
  }

  async function revoke(t) {
    if (!window.confirm(`Revoke the token "${t.name}" (${t.id})? Scripts using it stop working at once.`)) return;
    try {
      await api.del(`/api/v1/tokens/${encodeURIComponent(t.id)}`);
      await load();
    } catch (err) {
      ctx.showError(err);
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formMsg.textContent = '';
    const scopes = scopesIn.value.split(/[\s,]+/).filter(Boolean);
    const body = { name: nameIn.value.trim(), scopes };
    if (expSel.value) body.expires_in = expSel.value;
    createBtn.disabled = true;
    try {
      const tok = await api.post('/api/v1/tokens', body);
      const secret = h('code', { class: 'secret mono', 'data-testid': 'token-secret' }, tok.token);
      const copy = h('button', { type: 'button', class: 'btn btn-sm' }, 'Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(tok.token);
          copy.textContent = 'Copied';
        } catch {
          const r = document.createRange();
          r.selectNodeContents(secret);
          getSelection().removeAllRanges();
          getSelection().addRange(r);
          copy.textContent = 'Selected: press Ctrl+C';
        }
      });
      replace(
        secretBox,
        h(
          'div',
          { class: 'notice notice-ok', role: 'status' },
          h('p', {}, h('strong', {}, `Token "${tok.name}" created.`), ' Copy the secret now: it is shown only this once and cannot be read again.'),
          h('p', { class: 'secret-row' }, secret, copy),
          h('p', { class: 'small muted' }, `id ${tok.id} · scopes ${(tok.scopes || []).join(', ')} · expires ${tok.expires ? fmt.datetime(tok.expires) : 'never'}`),
        ),
      );
      secretBox.hidden = false;
      form.reset();
      await load();
    } catch (err) {
      formMsg.textContent = err.message;
    } finally {
      createBtn.disabled = false;
    }
  });

  replace(
    main,
    h('h1', {}, 'Tokens'),
    h('p', { class: 'muted lead' }, 'API tokens for scripts, workers and people. Only a hash of each secret is stored; a revoked token stops working at once.'),
    secretBox,
    form,
    h('section', { class: 'panel', 'aria-labelledby': 'tok-list-h' }, h('h2', { id: 'tok-list-h' }, 'Tokens'), listBox),
  );
  load();
}
