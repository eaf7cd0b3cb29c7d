import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from './paths.js';

/** hull's version, from the installation's package.json. */
export function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

export function versionString(): string {
  return `hull version ${version()}, node ${process.version}`;
}
