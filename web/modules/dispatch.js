// SPDX-License-Identifier: MIT
// web/modules/dispatch.js -- the dispatch module's page (contract in
// web/README.md). Three views, chosen by the hash query:
//   #/m/dispatch                  workers: online/offline/waiting/busy,
//                                 current task, speed, last label and
//                                 branch, a quarantine toggle
//   #/m/dispatch?view=queue       pending per worker type with wait-time
//                                 figures, the pending runs in claim order,
//                                 recent results
//   #/m/dispatch?log=TASK/RUN     a run's log, followed live until it ends
// Everything reads /api/v1/dispatch; live views also follow task.* and
// dispatch.* events.

import { link, hashQuery } from './dispatch/common.js';
import { workersView } from './dispatch/workers.js';
import { queueView } from './dispatch/queue.js';
import { logView } from './dispatch/log.js';

export async function mount(root, ctx) {
  const { h } = ctx;
  const q = hashQuery();
  const view = q.get('log') ? 'log' : q.get('view') || 'workers';
  root.append(
    h(
      'nav',
      { class: 'toolbar', 'aria-label': 'dispatch views' },
      h('a', { class: 'btn btn-sm', href: link({}), 'data-testid': 'dispatch-nav-workers', 'aria-current': view === 'workers' ? 'page' : null }, 'Workers'),
      h('a', { class: 'btn btn-sm', href: link({ view: 'queue' }), 'data-testid': 'dispatch-nav-queue', 'aria-current': view === 'queue' ? 'page' : null }, 'Queue'),
    ),
  );
  if (view === 'log') return logView(root, ctx, q.get('log'));
  if (view === 'queue') return queueView(root, ctx);
  return workersView(root, ctx);
}
