import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Development: `IMS_API_URL=http://127.0.0.1:8080 npm run dev` proxies the API to a running
// `ims serve`. The refresh cookie is checked against the Origin, so in development the server must
// run with IMS_PUBLIC_URL set to the dev server's URL (http://127.0.0.1:5173), see README.md.
const api = process.env.IMS_API_URL ?? 'http://127.0.0.1:8080';
const proxied = ['/api', '/auth', '/.well-known', '/healthz', '/readyz'];

export default defineConfig({
  base: '/',
  plugins: [react()],
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: false }])),
  },
  build: {
    outDir: 'dist',
    sourcemap: false,
    // CSP: no inline scripts; Vite emits module scripts and CSS files only. Keep assets as files
    // (data: URIs are allowed for images only, not fonts or scripts).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2020',
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
} as never);
