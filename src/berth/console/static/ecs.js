// Reading the cluster through the ECS API for the console's views: every list followed by its
// describe, in the pages and batch sizes the API allows.

const chunks = (items, size) => Array.from({ length: Math.ceil(items.length / size) },
  (_, i) => items.slice(i * size, (i + 1) * size));

export async function clusters(client) {
  const arns = await client.all((nextToken) => client.ecs('ListClusters', { nextToken }), 'clusterArns');
  const out = [];
  for (const part of chunks(arns, 100)) {
    out.push(...(await client.ecs('DescribeClusters', { clusters: part })).clusters);
  }
  return out.sort((a, b) => a.clusterName.localeCompare(b.clusterName));
}

export async function instances(client, cluster) {
  const arns = await client.all((nextToken) => client.ecs('ListContainerInstances',
    { cluster, nextToken }), 'containerInstanceArns');
  const out = [];
  for (const part of chunks(arns, 100)) {
    out.push(...(await client.ecs('DescribeContainerInstances',
      { cluster, containerInstances: part })).containerInstances);
  }
  return out;
}

export async function tasks(client, cluster, desiredStatus, extra = {}) {
  const arns = await client.all((nextToken) => client.ecs('ListTasks',
    { cluster, desiredStatus, nextToken, ...extra }), 'taskArns');
  const out = [];
  for (const part of chunks(arns, 100)) {
    out.push(...(await client.ecs('DescribeTasks', { cluster, tasks: part })).tasks);
  }
  return out.sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0));
}

export async function services(client, cluster) {
  const arns = await client.all((nextToken) => client.ecs('ListServices', { cluster, nextToken }),
    'serviceArns');
  const out = [];
  for (const part of chunks(arns, 10)) {
    out.push(...(await client.ecs('DescribeServices', { cluster, services: part })).services);
  }
  return out.sort((a, b) => a.serviceName.localeCompare(b.serviceName));
}

/** Task definitions by ARN, each described once per page load. */
const definitions = new Map();
export async function taskDefinition(client, arn) {
  if (!definitions.has(arn)) {
    definitions.set(arn, client.ecs('DescribeTaskDefinition', { taskDefinition: arn })
      .then((out) => out.taskDefinition)
      .catch((err) => { definitions.delete(arn); throw err; }));
  }
  return definitions.get(arn);
}

/** A resource's value in registeredResources/remainingResources. */
export function resource(list, name) {
  const r = (list ?? []).find((x) => x.name === name);
  if (!r) return name.startsWith('PORTS') ? [] : 0;
  return r.type === 'STRINGSET' ? r.stringSetValue ?? [] : r.integerValue ?? r.longValue ?? r.doubleValue ?? 0;
}

/** Where a container's output went: {group, stream} for the awslogs driver, else null. */
export function logTarget(definition, containerName, taskArn) {
  const c = definition?.containerDefinitions?.find((x) => x.name === containerName);
  const config = c?.logConfiguration;
  if (config?.logDriver !== 'awslogs') return null;
  const group = config.options?.['awslogs-group'];
  const prefix = config.options?.['awslogs-stream-prefix'];
  if (!group || !prefix) return group ? { group, stream: null } : null;
  return { group, stream: `${prefix}/${containerName}/${taskArn.split('/').pop()}` };
}
