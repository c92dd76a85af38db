// SPDX-License-Identifier: MIT
// web/pages/events.js -- #/events: the whole event stream on one page. The
// type filter goes to the server (?type=), so a narrow filter still shows
// the last events of that kind; each row expands to the full envelope.

import { h, replace } from '../dom.js';
import { eventFeedView } from '../feed.js';

export function title() {
  return 'Events';
}

export function mount(main, ctx) {
  const initial = new URLSearchParams(location.hash.split('?')[1] || '').get('type') || '';
  replace(
    main,
    h('h1', {}, 'Events'),
    h(
      'p',
      { class: 'muted lead' },
      'Every state change of the appliance, newest first. Filter by type prefix: ',
      h('code', {}, 'task'),
      ' matches task and task.*, ',
      h('code', {}, 'task.res*'),
      ' is a prefix; separate several with commas. The same stream is at ',
      h('code', {}, '/api/v1/events'),
      ' (Server-Sent Events) for scripts.',
    ),
    eventFeedView(ctx.scope, {
      testid: 'events-page-feed',
      heading: 'Event stream',
      history: 100,
      max: 500,
      serverFilter: true,
      full: true,
      filter: initial,
    }),
  );
}
