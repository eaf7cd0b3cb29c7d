import fs from 'node:fs';

/** hull's version, from package.json next to dist/. */
export function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

export function versionString(): string {
  return `hull version ${version()}, node ${process.version}`;
}
