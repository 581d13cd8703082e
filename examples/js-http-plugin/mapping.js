// A check-mapping plugin in JavaScript: Nomad `http` checks of a plain
// absolute path, mapped as the connector's built-in `http` mapping maps
// them (GET, HTTP/1.1, Nomad's User-Agent, statuses 200-399, the check's
// timing with rise 1 / fall 1). Build it with componentize-js (README.md).

// A root-level import of the world must be a default import.
import log from 'log';

const USER_AGENT = 'Nomad/2.0.0 (+https://www.nomadproject.io/; go1.26.6)';
const MAX_U32 = 4294967295n;

export function info() {
  return { name: 'js-http', version: '0.1.0', checkTypes: ['http'] };
}

// A u64 of milliseconds (a BigInt) as an option<u32>: none when 0.
function millis(ms) {
  if (ms === 0n) return undefined;
  return Number(ms > MAX_U32 ? MAX_U32 : ms);
}

function count(value, key) {
  if (!/^[1-9][0-9]{0,5}$/.test(value)) {
    throw `setting '${key}' must be a count from 1, got '${value}'`;
  }
  return Number(value);
}

// An `err(message)` of the WIT is a thrown string; the host falls back to
// a TCP check and logs the message with the service's name.
export function mapCheck(service, check, settings) {
  let rise;
  let fall;
  let status = '200-399';
  for (const [key, value] of settings) {
    if (key === 'rise') rise = count(value, key);
    else if (key === 'fall') fall = count(value, key);
    else if (key === 'expect-status') status = value;
    else throw `unknown setting '${key}' (known: expect-status, fall, rise)`;
  }
  if (!/^\/[A-Za-z0-9\/._~-]*$/.test(check.path)) {
    throw `check path '${check.path}' is not a plain absolute path`;
  }
  if (check.headers !== undefined || check.body !== undefined) {
    log('warn', `${service.name}: headers and body of check '${check.name}' are not sent`);
  }
  return {
    backend: {
      tag: 'http',
      val: {
        method: check.method ?? 'GET',
        uri: check.path,
        version: 'HTTP/1.1',
        headers: [['User-Agent', USER_AGENT]],
        body: '',
        defaultHost: true,
        expect: [{ negate: false, matcher: 'status', pattern: status }],
      },
    },
    timeoutCheckMs: millis(check.timeoutMs),
    server: {
      enabled: true,
      interMs: millis(check.intervalMs),
      rise: rise ?? Math.max(check.successBeforePassing, 1),
      fall: fall ?? Math.max(check.failuresBeforeCritical, 1),
      port: check.checkPort,
      ssl: false,
      verify: 'required',
    },
    notes: [],
    warnings: [],
  };
}
