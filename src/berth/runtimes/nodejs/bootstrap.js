'use strict';
// berth's Node.js runtime: loads the handler once, then serves invocations one at a time over
// the Lambda Runtime API. Handlers may be async, take a callback, or use the classic
// context.done / succeed / fail. With callbackWaitsForEmptyEventLoop (the default) a callback's
// answer is sent once the event loop has drained; a loop that drains with no answer at all ends
// the invocation with "Process exited before completing request", as the classic runtime did.
// The runtime keeps its own connection unref'd while a handler runs, so only the function's
// work keeps the loop alive.

const net = require('net');
const fs = require('fs');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const API = '/2018-06-01/runtime';

class RuntimeClient {
  constructor(address) {
    const i = address.lastIndexOf(':');
    this.host = address.slice(0, i) || '127.0.0.1';
    this.port = Number(address.slice(i + 1));
    this.sock = null;
    this.buf = Buffer.alloc(0);
    this.waiter = null;
  }

  connect() {
    const sock = net.createConnection({ host: this.host, port: this.port });
    sock.setNoDelay(true);
    sock.on('data', (d) => this.onData(d));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => {
      if (this.sock === sock) this.sock = null;
      this.fail(new Error('Runtime API connection closed'));
    });
    this.sock = sock;
    this.buf = Buffer.alloc(0);
  }

  request(method, urlPath, body, headers) {
    if (!this.sock) this.connect();
    const payload = body || Buffer.alloc(0);
    let head = `${method} ${urlPath} HTTP/1.1\r\nHost: runtime\r\nContent-Length: ${payload.length}\r\n`;
    for (const [k, v] of Object.entries(headers || {})) head += `${k}: ${v}\r\n`;
    this.sock.ref();
    this.sock.write(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), payload]));
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }

  onData(data) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const lines = this.buf.slice(0, end).toString('latin1').split('\r\n');
    const headers = {};
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const length = Number(headers['content-length'] || 0);
    if (this.buf.length < end + 4 + length) return;
    const body = this.buf.slice(end + 4, end + 4 + length);
    this.buf = this.buf.slice(end + 4 + length);
    const status = Number(lines[0].split(' ')[1]);
    const waiter = this.waiter;
    this.waiter = null;
    // Idle between requests: the connection must not keep the function's event loop alive.
    if (this.sock) this.sock.unref();
    if (waiter) waiter.resolve({ status, headers, body });
  }

  fail(err) {
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) waiter.reject(err);
  }

  next() { return this.request('GET', `${API}/invocation/next`); }

  respond(id, body) {
    return this.request('POST', `${API}/invocation/${id}/response`, body,
      { 'Content-Type': 'application/json' });
  }

  error(id, err) {
    return this.request('POST', `${API}/invocation/${id}/error`, Buffer.from(JSON.stringify(err)),
      { 'Content-Type': 'application/json', 'Lambda-Runtime-Function-Error-Type': err.errorType || 'Unhandled' });
  }

  initError(err) {
    return this.request('POST', `${API}/init/error`, Buffer.from(JSON.stringify(err)),
      { 'Content-Type': 'application/json', 'Lambda-Runtime-Function-Error-Type': err.errorType });
  }
}

function toErrorBody(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || 'Error',
      errorMessage: err.message,
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  if (err !== null && typeof err === 'object') {
    return { errorType: 'object', errorMessage: JSON.stringify(err), trace: [] };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

class Fault extends Error {
  constructor(type, message) {
    super(message);
    this.name = type;
  }
}

// console.* as AWS prints it: time, request id, level, then the message on one line (newlines
// become carriage returns, so a multi-line message stays one log event).
let currentRequestId = undefined;
function patchConsole() {
  const write = (level) => (...args) => {
    const message = util.format(...args).replace(/\n/g, '\r');
    process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
  };
  console.log = console.info = write('INFO');
  console.warn = write('WARN');
  console.error = write('ERROR');
  console.debug = write('DEBUG');
  console.trace = write('TRACE');
  console.fatal = write('FATAL');
}

async function loadHandler(root, spec) {
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) throw new Fault('Runtime.MalformedHandlerName', `Bad handler ${spec}`);
  const modulePath = spec.slice(0, dot);
  const handlerPath = spec.slice(dot + 1);
  const base = path.resolve(root, modulePath);
  let mod;
  const mjs = base + '.mjs';
  try {
    if (fs.existsSync(mjs)) {
      mod = await import(pathToFileURL(mjs).href);
    } else {
      try {
        mod = require(base);
      } catch (e) {
        if (e && e.code === 'ERR_REQUIRE_ESM') mod = await import(pathToFileURL(require.resolve(base)).href);
        else throw e;
      }
    }
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(base)) {
      throw new Fault('Runtime.ImportModuleError',
        `Error: Cannot find module '${modulePath}'\nRequire stack:\n- ${__filename}`);
    }
    if (e instanceof SyntaxError) throw new Fault('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}`);
    throw e;
  }
  let fn = mod;
  for (const part of handlerPath.split('.')) fn = fn == null ? undefined : fn[part];
  if (typeof fn !== 'function') {
    throw new Fault('Runtime.HandlerNotFound', `${spec} is undefined or not exported`);
  }
  return fn;
}

function makeContext(headers, env) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const ctx = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
  if (headers['lambda-runtime-client-context']) ctx.clientContext = JSON.parse(headers['lambda-runtime-client-context']);
  if (headers['lambda-runtime-cognito-identity']) ctx.identity = JSON.parse(headers['lambda-runtime-cognito-identity']);
  return ctx;
}

async function main() {
  const env = process.env;
  const client = new RuntimeClient(env.AWS_LAMBDA_RUNTIME_API);
  patchConsole();
  let handler;
  try {
    handler = await loadHandler(env.LAMBDA_TASK_ROOT || process.cwd(), env._HANDLER || '');
  } catch (e) {
    const body = toErrorBody(e);
    console.error(`${body.errorType}: ${body.errorMessage}`);
    await client.initError(body);
    process.exit(1);
  }

  let active = null; // the invocation in progress: { id, done, pending }

  process.on('beforeExit', () => {
    const inv = active;
    if (!inv || inv.done) return;
    if (inv.pending) {
      inv.finish(inv.pending[0], inv.pending[1]);
    } else {
      inv.done = true;
      client.error(inv.id, { errorMessage: `RequestId: ${inv.id} Process exited before completing request` })
        .finally(() => process.exit(0));
    }
  });
  process.on('uncaughtException', (err) => {
    console.error('Uncaught Exception', util.inspect(err));
    const done = () => process.exit(129);
    if (active && !active.done) {
      active.done = true;
      client.error(active.id, toErrorBody(err)).then(done, done);
    } else done();
  });
  process.on('unhandledRejection', (reason) => {
    const err = new Fault('Runtime.UnhandledPromiseRejection',
      reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason));
    console.error('Unhandled Promise Rejection', util.inspect(err));
    const done = () => process.exit(128);
    if (active && !active.done) {
      active.done = true;
      client.error(active.id, toErrorBody(err)).then(done, done);
    } else done();
  });

  const serveNext = async () => {
    const { headers, body } = await client.next();
    const id = headers['lambda-runtime-aws-request-id'];
    currentRequestId = id;
    if (headers['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
    else delete env._X_AMZN_TRACE_ID;
    // The worker's newer role credentials: SDK clients made from now on, and those whose
    // credentials expire (AWS_CREDENTIAL_EXPIRATION), read them from the environment.
    if (headers['berth-aws-credentials']) Object.assign(env, JSON.parse(headers['berth-aws-credentials']));
    const inv = { id, done: false, pending: null };
    active = inv;
    inv.finish = (err, result) => {
      if (inv.done) return;
      inv.done = true;
      let posted;
      if (err !== undefined && err !== null) {
        const errBody = toErrorBody(err);
        console.error('Invoke Error', JSON.stringify(errBody));
        posted = client.error(id, errBody);
      } else {
        let text;
        try {
          text = result === undefined ? 'null' : JSON.stringify(result);
        } catch (e) {
          posted = client.error(id, toErrorBody(new Fault('Runtime.MarshalError',
            `Unable to stringify response body: ${e.message}`)));
        }
        if (!posted) posted = client.respond(id, Buffer.from(text === undefined ? 'null' : text));
      }
      posted.then(() => setImmediate(serveNext), (e) => {
        console.error('Runtime API failure', e);
        process.exit(1);
      });
    };
    let context;
    let event;
    try {
      context = makeContext(headers, env);
      event = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch (e) {
      inv.finish(new Fault('Runtime.UnmarshalError', `Unable to parse input: ${e.message}`));
      return;
    }
    const callback = (err, result) => {
      if (inv.done || inv.pending) return;
      if (context.callbackWaitsForEmptyEventLoop) inv.pending = [err, result];
      else inv.finish(err, result);
    };
    context.done = (err, result) => inv.finish(err, result);
    context.succeed = (result) => inv.finish(null, result);
    context.fail = (err) => inv.finish(err === undefined || err === null ? new Error('handled') : err);
    try {
      const out = handler(event, context, callback);
      if (out && typeof out.then === 'function') {
        out.then((value) => inv.finish(null, value),
          (err) => inv.finish(err === undefined || err === null ? new Error('Promise rejected') : err));
      }
    } catch (err) {
      inv.finish(err);
    }
  };
  serveNext();
}

// A blank sandbox: node started ahead of its function. It says it is ready on its socket to the
// zygote, then blocks until it is given its function: environment and task root.
function awaitFunction(fd) {
  delete process.env.BERTH_BLANK_FD;
  fs.writeSync(fd, 'R');
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  fs.closeSync(fd);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) process.exit(0); // the worker let this blank go unused
  const spec = JSON.parse(text);
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, spec.env);
  process.chdir(spec.cwd);
}

if (process.env.BERTH_BLANK_FD) awaitFunction(Number(process.env.BERTH_BLANK_FD));
main();
