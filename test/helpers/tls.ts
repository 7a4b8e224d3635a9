import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A self-signed wildcard certificate for `*.preview.localhost` (openssl), written into `dir` as
 * `cert.pem` and `key.pem`.
 */
export function makeWildcardCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(
    join(dir, 'san.cnf'),
    '[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=DNS:*.preview.localhost\n',
  );
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      '/CN=*.preview.localhost',
      '-config',
      join(dir, 'san.cnf'),
      '-extensions',
      'ext',
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}
