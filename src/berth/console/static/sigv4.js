// AWS Signature Version 4 for the browser (and Node), on Web Crypto.
// It computes what botocore's SigV4Auth computes for the same request; tests check that.

const encoder = new TextEncoder();
// Hop-by-hop and tracing headers botocore leaves out of the signature.
const UNSIGNED = new Set(['baggage', 'connection', 'expect', 'keep-alive', 'proxy-authenticate',
  'proxy-authorization', 'te', 'traceparent', 'tracestate', 'trailer', 'transfer-encoding',
  'upgrade', 'user-agent', 'x-amzn-trace-id', 'authorization']);

const toHex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
const bytesOf = (data) => (typeof data === 'string' ? encoder.encode(data) : data ?? new Uint8Array());

export async function sha256Hex(data) {
  return toHex(await crypto.subtle.digest('SHA-256', bytesOf(data)));
}

async function hmac(key, message) {
  const k = await crypto.subtle.importKey('raw', bytesOf(key), { name: 'HMAC', hash: 'SHA-256' },
    false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, bytesOf(message)));
}

/** RFC 3986 encoding, as Python's quote(s, safe='-_.~'). */
export function uriEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** A query string in canonical form: RFC 3986 encoded, sorted by key, then value. */
export function canonicalQuery(params) {
  const pairs = Object.entries(params ?? {}).filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => [uriEncode(k), uriEncode(String(v))]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** botocore's normalize_url_path: resolve '.' and '..' segments, keep a trailing slash. */
function normalizePath(path) {
  if (!path) return '/';
  const out = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop(); else out.push(part);
  }
  let result = '/' + out.join('/');
  if (path.endsWith('/') && result !== '/') result += '/';
  return result;
}

/** The canonical URI: the (already encoded) path encoded once more, as botocore does for
 * every service but S3. */
function canonicalPath(path) {
  return normalizePath(path).split('/').map(uriEncode).join('/');
}

/** The canonical query of a URL's own query string, taken as already encoded (botocore). */
function urlQuery(search) {
  if (!search || search === '?') return '';
  const pairs = search.slice(1).split('&').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export function amzDate(now) {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * Sign a request. Returns the headers to send: the given ones plus X-Amz-Date and
 * Authorization (Host is signed but left for the HTTP client to send).
 * @param {{method: string, url: string, headers?: Record<string,string>, body?: string|Uint8Array,
 *   region: string, service: string, accessKeyId: string, secretAccessKey: string,
 *   sessionToken?: string, now?: Date}} req
 */
export async function sign(req) {
  const url = new URL(req.url);
  const date = amzDate(req.now ?? new Date());
  const headers = { ...(req.headers ?? {}) };
  for (const name of Object.keys(headers)) {
    if (['x-amz-date', 'authorization'].includes(name.toLowerCase())) delete headers[name];
  }
  headers['X-Amz-Date'] = date;
  if (req.sessionToken) headers['X-Amz-Security-Token'] = req.sessionToken;

  const toSign = new Map();
  for (const [name, value] of Object.entries(headers)) {
    const lname = name.toLowerCase();
    if (UNSIGNED.has(lname)) continue;
    const clean = String(value).trim().split(/\s+/).join(' ');
    toSign.set(lname, toSign.has(lname) ? `${toSign.get(lname)},${clean}` : clean);
  }
  if (!toSign.has('host')) toSign.set('host', url.host);
  const names = [...toSign.keys()].sort();
  const signedHeaders = names.join(';');
  const canonical = [
    req.method.toUpperCase(),
    canonicalPath(url.pathname),
    urlQuery(url.search),
    names.map((n) => `${n}:${toSign.get(n)}\n`).join(''),
    signedHeaders,
    await sha256Hex(req.body ?? ''),
  ].join('\n');

  const scope = `${date.slice(0, 8)}/${req.region}/${req.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, await sha256Hex(canonical)].join('\n');
  let key = await hmac('AWS4' + req.secretAccessKey, date.slice(0, 8));
  for (const part of [req.region, req.service, 'aws4_request']) key = await hmac(key, part);
  const signature = toHex(await hmac(key, stringToSign));

  headers.Authorization = `AWS4-HMAC-SHA256 Credential=${req.accessKeyId}/${scope}, `
    + `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
