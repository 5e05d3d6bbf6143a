// An HTTP proxy in front of an S3 endpoint that answers some requests itself with 503 SlowDown, as
// a throttled S3 service does, and passes the rest through untouched.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export interface FaultProxy {
  endpoint: string;
  /** Requests answered 503 so far, and passed through. */
  throttled: number;
  passed: number;
  close(): Promise<void>;
}

/** Throttles a request when `throttle(n)` says so (n: the request's number, from 0). */
export async function startFaultProxy(target: string, throttle: (n: number) => boolean): Promise<FaultProxy> {
  const to = new URL(target);
  let n = 0;
  const state = { throttled: 0, passed: 0 };
  const server = http.createServer((req, res) => {
    if (throttle(n++)) {
      state.throttled++;
      req.resume();
      req.on('end', () => res.writeHead(503, { 'Content-Type': 'application/xml', 'Retry-After': '0' }).end(SLOW_DOWN));
      return;
    }
    state.passed++;
    const up = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get throttled() { return state.throttled; },
    get passed() { return state.passed; },
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}
