import { describe, expect, it } from 'vitest';
import { type OpenApiDocument, renderPythonCodes, schemaToTs } from '../../scripts/sdk-codegen.js';

const doc: OpenApiDocument = { paths: {}, components: { schemas: { Port: { type: 'integer' } } } };

describe('schemaToTs: JSON Schema (as zod emits it) → TypeScript', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['empty schema', {}, 'unknown'],
    ['description only', { description: 'x' }, 'unknown'],
    ['string', { type: 'string', maxLength: 3 }, 'string'],
    ['integer', { type: 'integer', minimum: 1 }, 'number'],
    ['boolean', { type: 'boolean' }, 'boolean'],
    ['null', { type: 'null' }, 'null'],
    ['const', { const: true }, 'true'],
    ['enum', { type: 'string', enum: ['a', 'b'] }, "'a' | 'b'".replace(/'/g, '"')],
    ['type list', { type: ['string', 'null'] }, 'string | null'],
    [
      'anyOf',
      { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
      'string | string[]',
    ],
    [
      'array of objects',
      { type: 'array', items: { type: 'object', additionalProperties: { type: 'number' } } },
      'Array<Record<string, number>>',
    ],
    ['record', { type: 'object', additionalProperties: { type: 'string' } }, 'Record<string, string>'],
    ['open object', { type: 'object' }, 'Record<string, unknown>'],
    ['closed empty object', { type: 'object', additionalProperties: false }, 'Record<string, never>'],
    ['$ref', { $ref: '#/components/schemas/Port' }, 'number'],
  ];
  it.each(cases)('%s', (_name, schema, expected) => {
    expect(schemaToTs(schema, doc)).toBe(expected);
  });

  it('objects: required vs optional, quoted keys, descriptions as comments', () => {
    const ts = schemaToTs(
      {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'The id' },
          'x-y': { type: 'number' },
        },
        required: ['id'],
      },
      doc,
    );
    expect(ts).toBe('{\n  /** The id */\n  id: string;\n  "x-y"?: number;\n}');
  });
});

describe('renderPythonCodes', () => {
  it('one exception class per code, CamelCase with an Error suffix', () => {
    const py = renderPythonCodes({
      sandbox_not_found: { status: 404, hint: 'List them.' },
      engine_error: { status: 502, hint: 'See "the" words.' },
    });
    expect(py).toContain('class SandboxNotFoundError(PreviewdError):\n    code = "sandbox_not_found"');
    expect(py).toContain('class EngineError(PreviewdError):');
    expect(py).toContain('"engine_error": {"status": 502, "hint": "See \\"the\\" words."}');
  });
});
