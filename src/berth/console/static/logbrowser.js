// The log browser: log groups, a group's streams, a stream's events (or the group's events that
// match a filter pattern), and follow, which keeps reading new events as they arrive.
// Route: #view=logs[&group=G[&stream=S][&filter=P]].
import { $, button, describe, el, go, route, table, when } from './dom.js';

const FOLLOW_MS = 1000;
const MAX_SHOWN = 1000;      // events kept on the page while following

let follow = null;           // {timer, key} while following

function stopFollowing() {
  if (follow) clearTimeout(follow.timer);
  follow = null;
  $('logs-follow').checked = false;
}

const logsRoute = (changes) => {
  const params = Object.fromEntries(route());
  const next = { ...params, view: 'logs', ...changes };
  go(Object.fromEntries(Object.entries(next).filter(([, v]) => v !== null && v !== '')));
};

let renders = 0;     // a render that a newer one overtook while it waited writes nothing

export async function showLogs(client) {
  const turn = ++renders;
  const current = () => turn === renders;
  const params = route();
  const group = params.get('group');
  const stream = params.get('stream');
  const filter = params.get('filter') ?? '';
  stopFollowing();
  $('logs-status').textContent = '';
  $('logs-prefix').value = params.get('prefix') ?? '';
  $('logs-filter').value = filter;
  try {
    await renderGroups(client, group, params.get('prefix') ?? '', current);
    if (!current()) return;
    $('logs-group-title').textContent = group ?? 'Choose a log group';
    if (!group) {
      $('logs-streams').replaceChildren();
      $('logs-events').textContent = '';
      return;
    }
    await renderStreams(client, group, stream, current);
    if (!current()) return;
    $('logs-events-title').textContent = filter ? `Events matching ${filter}` : stream ?? 'All streams';
    await renderEvents(client, group, stream, filter, current);
  } catch (err) {
    if (!current()) return;
    $('logs-status').textContent = describe(err);
    $('logs-status').className = 'error';
  }
}

async function renderGroups(client, selected, prefix, current) {
  const groups = await client.all((nextToken) => client.logs('DescribeLogGroups',
    { nextToken, ...(prefix ? { logGroupNamePrefix: prefix } : {}) }), 'logGroups');
  if (!current()) return;
  $('logs-groups').replaceChildren(...groups.map((g) => el('li', {},
    button([el('span', {}, g.logGroupName), el('small', {}, `${Math.round((g.storedBytes ?? 0) / 1024)} KiB`)],
      () => logsRoute({ group: g.logGroupName, stream: null, filter: null }),
      { className: g.logGroupName === selected ? 'selected' : '', dataset: { name: g.logGroupName } }))));
  if (!groups.length) $('logs-groups').append(el('li', { className: 'hint' }, 'No log groups.'));
}

async function renderStreams(client, group, selected, current) {
  const out = await client.logs('DescribeLogStreams',
    { logGroupName: group, orderBy: 'LastEventTime', descending: true, limit: 50 });
  if (!current()) return;
  const pick = (name) => el('a', { href: '#', onclick: (e) => { e.preventDefault(); logsRoute({ stream: name, filter: null }); } }, name);
  $('logs-streams').replaceChildren(table([
    { title: 'Stream', cell: (s) => (s.logStreamName === selected ? el('b', {}, s.logStreamName) : pick(s.logStreamName)) },
    { title: 'Last event', cell: (s) => when(s.lastEventTimestamp) },
  ], out.logStreams, (s) => s.logStreamName));
}

const line = (e) => `${when(e.timestamp)}  ${e.message.replace(/\r\n?/g, '\n').replace(/\n$/, '')}`;

function show(events, append) {
  const pre = $('logs-events');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const lines = events.map(line);
  const kept = append && pre.textContent ? [...pre.textContent.split('\n'), ...lines] : lines;
  pre.textContent = kept.slice(-MAX_SHOWN).join('\n') || 'No events.';
  if (!append || atBottom) pre.scrollTop = pre.scrollHeight;
}

/** One read: a stream's latest events (then onwards from the token), or the filter's. */
async function read(client, group, stream, filter, since) {
  if (stream && !filter) {
    const body = { logGroupName: group, logStreamName: stream, startFromHead: Boolean(since) };
    if (since) body.nextToken = since;
    const out = await client.logs('GetLogEvents', body);
    return { events: out.events, next: out.nextForwardToken };
  }
  const events = [];
  let token;
  const start = since ?? Date.now() - 3600_000;
  for (let page = 0; page < 20; page++) {
    const out = await client.logs('FilterLogEvents', { logGroupName: group, startTime: start,
      filterPattern: filter || undefined, nextToken: token, ...(stream ? { logStreamNames: [stream] } : {}) });
    events.push(...out.events);
    if (!out.nextToken || out.nextToken === token) break;
    token = out.nextToken;
  }
  events.sort((a, b) => a.timestamp - b.timestamp);
  const last = events.length ? events[events.length - 1].timestamp + 1 : start;
  return { events, next: last };
}

async function renderEvents(client, group, stream, filter, current) {
  const first = await read(client, group, stream, filter, null);
  if (!current()) return;
  stopFollowing();         // what was followed is not what is shown now
  show(first.events, false);
  $('logs-follow').onchange = () => {
    if (!$('logs-follow').checked) { stopFollowing(); return; }
    const key = `${group}|${stream}|${filter}`;
    let since = first.next;
    follow = { key, timer: null };
    const tick = async () => {
      if (follow?.key !== key) return;
      try {
        const more = await read(client, group, stream, filter, since);
        since = more.next ?? since;
        if (more.events.length) show(more.events, true);
        $('logs-status').textContent = `Following · ${new Date().toLocaleTimeString()}`;
        $('logs-status').className = 'hint';
      } catch (err) {
        $('logs-status').textContent = describe(err);
        $('logs-status').className = 'error';
      }
      if (follow?.key === key) follow.timer = setTimeout(tick, FOLLOW_MS);
    };
    tick();
  };
}

export function startLogs() {
  $('logs-search').addEventListener('submit', (e) => {
    e.preventDefault();
    logsRoute({ filter: $('logs-filter').value.trim() || null });
  });
  $('logs-prefix-form').addEventListener('submit', (e) => {
    e.preventDefault();
    logsRoute({ prefix: $('logs-prefix').value.trim() || null });
  });
}

export { stopFollowing };
