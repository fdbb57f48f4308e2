import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { type ApiServer } from '../api/server.ts';
import { ApiError } from '../errors.ts';

/** The dashboard's files: plain HTML, CSS and JavaScript modules, shipped as they are (no build step). */
export const UI_DIR = new URL('./static/', import.meta.url).pathname;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Everything the page may load comes from this server: no CDN, no fonts, no inline script, no
 * framing by another site. `connect-src 'self'` covers the JSON API and the event stream.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // Small files that change with the program: revalidate every time, never serve a stale UI.
  'cache-control': 'no-cache',
};

interface Asset {
  body: Buffer;
  type: string;
}

/** Reads the static directory once: only the files found there can ever be served (no path is built from a request). */
export function loadAssets(dir = UI_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(dir, name)), type });
  }
  return assets;
}

function send(res: ServerResponse, asset: Asset): 'streamed' {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': asset.body.length });
  res.end(asset.body);
  return 'streamed';
}

/**
 * The dashboard on the manager's HTTP server: the page at `/` and its files under `/ui/`. The page
 * only reads the JSON API and the event stream, and sends actions with the token the person types in.
 */
export function registerUi(api: ApiServer, assets = loadAssets()): void {
  const page = assets.get('index.html');
  if (!page) throw new Error(`the dashboard is missing: no index.html in ${UI_DIR}`);
  api.add({ method: 'GET', path: '/', handler: ({ res }) => send(res, page) });
  api.add({
    method: 'GET',
    path: '/ui/:file',
    handler: ({ params, res }) => {
      const asset = assets.get(params['file']!);
      if (!asset) throw new ApiError(404, `no such dashboard file: ${params['file']}`);
      return send(res, asset);
    },
  });
}
