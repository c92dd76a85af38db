// SPDX-License-Identifier: MIT
// web/modules/example.js -- the example module's page, and the template for
// module pages (contract in web/README.md): lists the notes
// (GET /api/v1/example/notes, paged with ?after), adds one
// (POST /api/v1/example/notes, scope example:write) and shows notes that
// others add as their example.noted events arrive.

const PAGE = 500; // the API's largest page
const KEEP = 200; // notes shown

export async function mount(root, ctx) {
  const { h, fmt, api } = ctx;
  const shown = new Set();
  const list = h('ol', { class: 'note-list', 'data-testid': 'example-notes', 'aria-live': 'polite' });
  const empty = h('p', { class: 'muted' }, 'No notes yet.');
  const count = h('span', { class: 'muted small', 'data-testid': 'example-count' });
  const text = h('textarea', {
    id: 'example-note-text',
    class: 'input',
    required: true,
    rows: '2',
    maxlength: '4096',
    placeholder: 'Write a note…',
    'data-testid': 'example-note-text',
  });
  const msg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'example-note-error' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add note');
  const form = h(
    'form',
    { class: 'panel', 'data-testid': 'example-note-form' },
    h('div', { class: 'field' }, h('label', { for: 'example-note-text' }, 'New note'), text),
    h(
      'p',
      { class: 'small muted' },
      'Needs a token with the scope ',
      h('code', {}, 'example:write'),
      '. Adding a note publishes an ',
      h('code', {}, 'example.noted'),
      ' event.',
    ),
    h('div', { class: 'toolbar' }, submit),
    msg,
  );

  function row(note) {
    return h(
      'li',
      { 'data-testid': 'example-note', 'data-note-id': note.id },
      h('span', { class: 'mono muted' }, `#${note.id}`),
      h('span', { class: 'note-text' }, note.text),
      h(
        'span',
        { class: 'small muted', title: fmt.date(note.created_ms)?.toString() ?? '' },
        `${note.author || 'anonymous'} · ${fmt.datetime(note.created_ms)}`,
      ),
    );
  }

  function add(note) {
    if (!note || note.id === undefined || shown.has(note.id)) return;
    shown.add(note.id);
    // newest first, whatever order the list load and live events arrive in
    const before = [...list.children].find((li) => Number(li.dataset.noteId) < Number(note.id));
    list.insertBefore(row(note), before || null);
    while (list.children.length > KEEP) list.lastElementChild.remove();
    empty.hidden = true;
    count.textContent = `${shown.size} note${shown.size === 1 ? '' : 's'} shown`;
  }

  async function load() {
    let after = 0;
    const notes = [];
    for (;;) {
      const page = await api.get(`/api/v1/example/notes?after=${after}&limit=${PAGE}`, { signal: ctx.signal });
      const batch = (page && page.notes) || [];
      notes.push(...batch);
      if (notes.length > KEEP) notes.splice(0, notes.length - KEEP);
      if (batch.length < PAGE) break;
      after = batch[batch.length - 1].id;
    }
    for (const n of notes) add(n);
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const value = text.value.trim();
    if (!value) {
      msg.textContent = 'Write something first.';
      return;
    }
    submit.disabled = true;
    try {
      add(await api.post('/api/v1/example/notes', { text: value }));
      text.value = '';
    } catch (err) {
      msg.textContent = api.isAuthError(err)
        ? `${err.message} — set a token with the scope example:write (Set token, top right).`
        : err.message;
    } finally {
      submit.disabled = false;
    }
  });

  root.append(
    form,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'example-notes-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'example-notes-h' }, 'Notes, newest first'), count),
      empty,
      list,
    ),
  );

  // live: notes added elsewhere (relengctl, scripts, another browser)
  ctx.onEvent('example.noted', (env) => add(env.data));
  try {
    await load();
  } catch (err) {
    if (err.name !== 'AbortError') ctx.showError(err);
  }
}
