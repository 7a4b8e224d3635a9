import type { TestServer } from './server.js';

export interface ApiOperation {
  method: string;
  /** The OpenAPI path, e.g. `/v1/sandboxes/{id}/files`. */
  template: string;
  /** True when the operation says it needs no key (`security: []`). */
  public: boolean;
}

/** Every operation of the running server's `/openapi.json`: a route added later is covered too. */
export async function apiOperations(server: TestServer): Promise<ApiOperation[]> {
  const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { security?: unknown[] }>>;
  };
  const ops: ApiOperation[] = [];
  for (const [template, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      ops.push({
        method: method.toUpperCase(),
        template,
        public: Array.isArray(op.security) && op.security.length === 0,
      });
    }
  }
  return ops;
}

/** The path of an operation with its parameters filled in. */
export function fillPath(template: string, params: { id: string } & Record<string, string>): string {
  const values: Record<string, string> = {
    port: '3000',
    pid: '1',
    name: 'static',
    keyId: 'key_unknown',
    deliveryId: 'msg_01jz5r6v7w8x9y0z1a2b3c4d5e',
    ...params,
  };
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no test value for path parameter {${name}} in ${template}`);
    return value;
  });
}
