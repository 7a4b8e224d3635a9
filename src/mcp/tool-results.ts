/**
 * What a tool answers: its value as text (for the model) and as structured content (for
 * programs), or, for a failed call, the API's error code, message and hint as both, with
 * `isError: true` so the agent sees the failure and can act on the hint.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isPreviewdError } from '@previewd/sdk';

export interface ToolErrorBody {
  error: { code: string; message: string; hint?: string; status?: number; retryAfterSec?: number };
}

export function jsonResult(value: Record<string, unknown>, text?: string): CallToolResult {
  return {
    content: [{ type: 'text', text: text ?? JSON.stringify(value, null, 2) }],
    structuredContent: value,
  };
}

export function errorResult(err: unknown): CallToolResult {
  const body = errorBody(err);
  const { code, message, hint } = body.error;
  return {
    isError: true,
    content: [{ type: 'text', text: `${code}: ${message}${hint ? `\nhint: ${hint}` : ''}` }],
    structuredContent: body as unknown as Record<string, unknown>,
  };
}

/** The API's error (code, message, hint) from what the SDK threw; anything else is `internal`. */
export function errorBody(err: unknown): ToolErrorBody {
  if (isPreviewdError(err)) {
    return {
      error: {
        code: err.code,
        message: err.message,
        ...(err.hint ? { hint: err.hint } : {}),
        ...(err.status ? { status: err.status } : {}),
        ...(err.retryAfterSec !== undefined ? { retryAfterSec: err.retryAfterSec } : {}),
      },
    };
  }
  return {
    error: {
      code: 'internal',
      message: err instanceof Error ? err.message : String(err),
      hint: 'This is a previewd bug; the server log has the details.',
    },
  };
}

/** Runs a tool's work; whatever it throws becomes an error result. */
export async function toolCall(work: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await work();
  } catch (err) {
    return errorResult(err);
  }
}

/** At most `max` characters of `text`, keeping its end (where a failure usually is). */
export function keepTail(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  return { text: text.slice(text.length - max), truncated: true };
}
