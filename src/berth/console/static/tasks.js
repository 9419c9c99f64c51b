// A cluster's tasks: the list (running or stopped), and one task with its containers, exit
// codes, stopped reason and links to its containers' logs.
import * as ecs from './ecs.js';
import { button, describe, el, facts, table, tail, when } from './dom.js';
import { clusterRoute, setStatus, showCluster } from './cluster.js';

const family = (arn) => tail(arn);

function logsLink(target, text = 'logs') {
  if (!target) return null;
  const params = new URLSearchParams({ view: 'logs', group: target.group });
  if (target.stream) params.set('stream', target.stream);
  return el('a', { href: `#${params}`, className: 'logs-link' }, text);
}

function containerSummary(c) {
  const code = c.exitCode !== undefined && c.exitCode !== null ? ` · exit ${c.exitCode}` : '';
  return el('div', {}, el('b', {}, c.name), ` ${c.lastStatus ?? ''}${code}`);
}

async function definitionsOf(client, list) {
  const out = new Map();
  for (const arn of new Set(list.map((t) => t.taskDefinitionArn))) {
    try { out.set(arn, await ecs.taskDefinition(client, arn)); } catch { /* deregistered */ }
  }
  return out;
}

export async function renderTasks(client, cluster, stopped) {
  const list = await ecs.tasks(client, cluster, stopped ? 'STOPPED' : 'RUNNING');
  const defs = await definitionsOf(client, list);
  const open = (t) => el('a', { href: '#', onclick: (e) => { e.preventDefault(); clusterRoute({ task: tail(t.taskArn) }); } },
    tail(t.taskArn));
  return el('div', { className: 'stack' },
    el('div', { className: 'row' },
      el('div', { className: 'tabs' },
        button('Running', () => clusterRoute({ stopped: null }), { className: stopped ? 'tab' : 'tab selected', dataset: { filter: 'running' } }),
        button('Stopped', () => clusterRoute({ stopped: '1' }), { className: stopped ? 'tab selected' : 'tab', dataset: { filter: 'stopped' } })),
      el('span', { className: 'hint' }, `${list.length} task${list.length === 1 ? '' : 's'}`)),
    table([
      { title: 'Task', cell: (t) => [open(t), el('br'), el('small', {}, t.startedBy ? `by ${t.startedBy}` : t.group ?? '')] },
      { title: 'Definition', cell: (t) => family(t.taskDefinitionArn) },
      { title: 'Status', cell: (t) => el('span', { className: `pill ${t.lastStatus.toLowerCase()}` }, `${t.lastStatus} → ${t.desiredStatus}`) },
      { title: 'Containers', cell: (t) => t.containers.map(containerSummary) },
      { title: 'Stopped reason', cell: (t) => t.stoppedReason ?? '' },
      { title: 'Created', cell: (t) => when(t.createdAt) },
      { title: 'Logs', cell: (t) => t.containers.map((c) => logsLink(
        ecs.logTarget(defs.get(t.taskDefinitionArn), c.name, t.taskArn), t.containers.length > 1 ? c.name : 'logs')) },
    ], list, (t) => tail(t.taskArn)));
}

export async function renderTask(client, cluster, id) {
  const out = await client.ecs('DescribeTasks', { cluster, tasks: [id], include: ['TAGS'] });
  const task = out.tasks[0];
  if (!task) return el('p', { className: 'error' }, `Task ${id} not found.`);
  let definition = null;
  try { definition = await ecs.taskDefinition(client, task.taskDefinitionArn); } catch { /* gone */ }
  const stop = task.lastStatus === 'STOPPED' ? null : button('Stop task', async () => {
    try {
      await client.ecs('StopTask', { cluster, task: task.taskArn, reason: 'Stopped from the berth console' });
      await showCluster(client);
      setStatus(`Stopping ${id}`, 'ok');
    } catch (err) { setStatus(describe(err), 'error'); }
  }, { id: 'stop-task' });
  return el('div', { className: 'stack', id: 'task-detail' },
    el('div', { className: 'row' },
      button('← Tasks', () => clusterRoute({ task: null }), { className: 'quiet' }),
      stop),
    facts([
      ['Task', task.taskArn], ['Definition', family(task.taskDefinitionArn)],
      ['Status', `${task.lastStatus} (desired ${task.desiredStatus})`],
      ['Health', task.healthStatus], ['Container instance', tail(task.containerInstanceArn)],
      ['Group', task.group], ['Started by', task.startedBy],
      ['CPU / memory', `${task.cpu} units / ${task.memory} MiB`],
      ['Created', when(task.createdAt)], ['Started', when(task.startedAt)],
      ['Stopped', when(task.stoppedAt)], ['Stop code', task.stopCode],
      ['Stopped reason', task.stoppedReason],
      ['Tags', (task.tags ?? []).map((t) => `${t.key}=${t.value}`).join(', ')],
    ]),
    el('h3', {}, 'Containers'),
    table([
      { title: 'Name', cell: (c) => c.name },
      { title: 'Image', cell: (c) => definition?.containerDefinitions?.find((d) => d.name === c.name)?.image ?? '' },
      { title: 'Status', cell: (c) => c.lastStatus },
      { title: 'Exit code', cell: (c) => (c.exitCode ?? '') },
      { title: 'Reason', cell: (c) => c.reason ?? '' },
      { title: 'Ports', cell: (c) => (c.networkBindings ?? []).map((b) => `${b.hostPort}→${b.containerPort}/${b.protocol}`).join(', ') },
      { title: 'Logs', cell: (c) => logsLink(ecs.logTarget(definition, c.name, task.taskArn)) },
    ], task.containers, (c) => c.name));
}
