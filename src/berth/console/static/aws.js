// A small client for the Lambda (REST-JSON), CloudWatch Logs and ECS (JSON 1.1) operations the
// console uses: every request signed with SigV4 and sent to the page's own origin.
import { canonicalQuery, sign } from './sigv4.js';

const LAMBDA = '/2015-03-31';
const MAX_PAGES = 20;  // bounds every paginated listing

export class AwsError extends Error {
  constructor(code, message, status) {
    super(message ? `${code}: ${message}` : code);
    this.code = code;
    this.status = status;
  }
}

export function base64Encode(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

export function base64Decode(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

const fnPath = (name) => `${LAMBDA}/functions/${encodeURIComponent(name)}`;

export class Client {
  /** @param {{endpoint: string, region: string, accessKeyId: string, secretAccessKey: string}} creds */
  constructor(creds) {
    this.creds = creds;
  }

  async send(service, method, path, { query, headers = {}, body } = {}) {
    const qs = canonicalQuery(query);
    const url = `${this.creds.endpoint}${path}${qs ? '?' + qs : ''}`;
    const signed = await sign({ ...this.creds, service, method, url, headers, body: body ?? '' });
    const response = await fetch(url, { method, headers: signed, body: body ?? undefined });
    if (!response.ok) {
      let detail = {};
      try { detail = await response.json(); } catch { /* not JSON: keep the status */ }
      const code = response.headers.get('x-amzn-errortype')?.split(':')[0]
        || detail.__type?.split('#').pop() || `HTTP ${response.status}`;
      throw new AwsError(code, detail.message ?? detail.Message ?? '', response.status);
    }
    return response;
  }

  async lambda(method, path, { query, body, headers } = {}) {
    const json = body === undefined ? undefined : JSON.stringify(body);
    const hdrs = { ...(json === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers };
    return this.send('lambda', method, path, { query, headers: hdrs, body: json });
  }

  async json11(service, target, body) {
    const response = await this.send(service, 'POST', '/', {
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target },
      body: JSON.stringify(body),
    });
    return response.json();
  }

  async logs(operation, body) {
    return this.json11('logs', `Logs_20140328.${operation}`, body);
  }

  async ecs(operation, body) {
    return this.json11('ecs', `AmazonEC2ContainerServiceV20141113.${operation}`, body);
  }

  /** Every item of a paginated JSON operation (at most MAX_PAGES pages). */
  async all(call, listKey, tokenKey = 'nextToken') {
    const items = [];
    let token;
    for (let page = 0; page < MAX_PAGES; page++) {
      const out = await call(token);
      items.push(...(out[listKey] ?? []));
      if (!out[tokenKey] || out[tokenKey] === token) break;
      token = out[tokenKey];
    }
    return items;
  }

  async listFunctions() {
    const functions = await this.all(async (Marker) => (await this.lambda(
      'GET', `${LAMBDA}/functions/`, { query: { Marker } })).json(), 'Functions', 'NextMarker');
    return functions.sort((a, b) => a.FunctionName.localeCompare(b.FunctionName));
  }

  async getFunction(name) {
    return (await this.lambda('GET', fnPath(name))).json();
  }

  /** The function's deployment package, from GetFunction's Code.Location (a same-origin URL). */
  async downloadCode(location) {
    const response = await fetch(location);
    if (!response.ok) throw new AwsError(`HTTP ${response.status}`, 'could not download the code');
    return new Uint8Array(await response.arrayBuffer());
  }

  async createFunction({ name, runtime, handler, role, zipBytes }) {
    const body = { FunctionName: name, Runtime: runtime, Handler: handler, Role: role,
      Code: { ZipFile: base64Encode(zipBytes) } };
    return (await this.lambda('POST', `${LAMBDA}/functions`, { body })).json();
  }

  async updateFunctionConfiguration(name, changes) {
    return (await this.lambda('PUT', `${fnPath(name)}/configuration`, { body: changes })).json();
  }

  async listVersions(name) {
    return this.all(async (Marker) => (await this.lambda('GET', `${fnPath(name)}/versions`,
      { query: { Marker } })).json(), 'Versions', 'NextMarker');
  }

  async publishVersion(name, description) {
    return (await this.lambda('POST', `${fnPath(name)}/versions`,
      { body: { Description: description } })).json();
  }

  async listAliases(name) {
    return this.all(async (Marker) => (await this.lambda('GET', `${fnPath(name)}/aliases`,
      { query: { Marker } })).json(), 'Aliases', 'NextMarker');
  }

  /** Create the alias, or point it at `version` if it exists. */
  async putAlias(name, alias, version) {
    try {
      return (await this.lambda('PUT', `${fnPath(name)}/aliases/${encodeURIComponent(alias)}`,
        { body: { FunctionVersion: version } })).json();
    } catch (err) {
      if (err.code !== 'ResourceNotFoundException') throw err;
      return (await this.lambda('POST', `${fnPath(name)}/aliases`,
        { body: { Name: alias, FunctionVersion: version } })).json();
    }
  }

  async updateFunctionCode(name, zipBytes) {
    const body = { ZipFile: base64Encode(zipBytes) };
    return (await this.lambda('PUT', `${fnPath(name)}/code`, { body })).json();
  }

  /** Invoke synchronously with the log tail: {payload, functionError, log, status, version}. */
  async invoke(name, payloadText) {
    const response = await this.send('lambda', 'POST', `${fnPath(name)}/invocations`, {
      headers: { 'X-Amz-Invocation-Type': 'RequestResponse', 'X-Amz-Log-Type': 'Tail' },
      body: payloadText,
    });
    const tail = response.headers.get('x-amz-log-result');
    return {
      status: response.status,
      functionError: response.headers.get('x-amz-function-error'),
      version: response.headers.get('x-amz-executed-version'),
      log: tail ? new TextDecoder().decode(base64Decode(tail)) : '',
      payload: await response.text(),
    };
  }

  /** The most recent `limit` events of a log group since `sinceMs` ago, oldest first. */
  async recentLogEvents(group, { sinceMs = 3600_000, limit = 200 } = {}) {
    const events = [];
    let nextToken;
    for (let page = 0; page < MAX_PAGES; page++) {
      const out = await this.logs('FilterLogEvents', {
        logGroupName: group, startTime: Date.now() - sinceMs, nextToken,
      });
      events.push(...out.events);
      if (events.length > limit) events.splice(0, events.length - limit);
      if (!out.nextToken || out.nextToken === nextToken) break;
      nextToken = out.nextToken;
    }
    return events.sort((a, b) => a.timestamp - b.timestamp || a.ingestionTime - b.ingestionTime);
  }
}
