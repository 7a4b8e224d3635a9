import { type Command, InvalidArgumentError } from 'commander';
import type { Config } from '../../config/schema.js';
import type { ImagePhase, ImageProgress } from '../../runtimes/images/build.js';
import { IMAGE_KINDS, type ImageKind } from '../../runtimes/images/recipes.js';

/**
 * `previewd images build|status`: the runtime images built locally when no registry is reachable.
 * Progress goes to stderr, results to stdout (JSON with --json).
 */
export function registerImagesCommand(program: Command, load: () => { config: Config }): void {
  const images = program.command('images').description('Build and inspect the local runtime images');

  images
    .command('build')
    .description('Build the base, Node and Python images (only what is missing or out of date)')
    .option('--force', 'rebuild even when up to date, and re-resolve the Node/npm versions', false)
    .option('--only <images>', `comma-separated subset of ${IMAGE_KINDS.join(', ')}`, parseOnly)
    .option('--json', 'print the result as JSON', false)
    .action(async (opts: { force: boolean; only?: ImageKind[]; json: boolean }) => {
      const { config } = load();
      // Loaded here so the other commands start without dockerode and the image recipes.
      const { createDockerClient } = await import('../../providers/docker/client.js');
      const { buildImages } = await import('../../runtimes/images/build.js');
      const progress = createProgressReporter(process.stderr);
      try {
        const results = await buildImages({
          docker: createDockerClient(config),
          config,
          force: opts.force,
          only: opts.only,
          onProgress: progress.report,
        });
        progress.stop();
        if (opts.json) writeJson(results);
        else
          for (const r of results) process.stdout.write(`${r.name}\t${r.built ? 'built' : 'up to date'}\n`);
      } catch (err) {
        progress.stop();
        fail('images build', err);
      }
    });

  images
    .command('status')
    .description('Show whether each runtime image is present and up to date (no network)')
    .option('--json', 'print the result as JSON', false)
    .action(async (opts: { json: boolean }) => {
      const { config } = load();
      const { createDockerClient } = await import('../../providers/docker/client.js');
      const { imageStatus } = await import('../../runtimes/images/build.js');
      try {
        const states = await imageStatus(createDockerClient(config), config);
        if (opts.json) writeJson(states);
        else {
          for (const s of states) {
            const state = !s.present ? 'missing' : s.upToDate ? 'up to date' : 'out of date';
            process.stdout.write(`${s.name}\t${state}\n`);
          }
        }
      } catch (err) {
        fail('images status', err);
      }
    });
}

function parseOnly(value: string): ImageKind[] {
  const kinds = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const kind of kinds) {
    if (!(IMAGE_KINDS as readonly string[]).includes(kind)) {
      throw new InvalidArgumentError(`unknown image "${kind}" (expected ${IMAGE_KINDS.join(', ')})`);
    }
  }
  return kinds as ImageKind[];
}

function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function fail(command: string, err: unknown): void {
  process.stderr.write(`previewd ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}

interface ProgressReporter {
  report: (p: ImageProgress) => void;
  stop: () => void;
}

/** A one-line spinner on a terminal; one plain line per phase otherwise. */
export function createProgressReporter(out: NodeJS.WriteStream): ProgressReporter {
  return out.isTTY ? spinnerReporter(out) : lineReporter(out);
}

function finalLine(p: ImageProgress): string | undefined {
  if (p.phase === 'done') return `✓ ${p.image}: ${p.message}`;
  if (p.phase === 'skip') return `· ${p.image}: ${p.message}`;
  return undefined;
}

function lineReporter(out: NodeJS.WritableStream): ProgressReporter {
  let last = '';
  return {
    report: (p) => {
      const key = `${p.image} ${p.phase}`;
      if (key === last) return;
      last = key;
      out.write(`[images] ${finalLine(p) ?? `${p.image}: ${p.phase}: ${p.message}`}\n`);
    },
    stop: () => undefined,
  };
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function spinnerReporter(out: NodeJS.WriteStream): ProgressReporter {
  let current: { image: string; phase: ImagePhase; message: string; since: number } | undefined;
  let frame = 0;
  const render = (): void => {
    if (!current) return;
    frame = (frame + 1) % FRAMES.length;
    const elapsed = Math.floor((Date.now() - current.since) / 1000);
    const head = `${FRAMES[frame]} ${current.image} ${current.phase} (${elapsed}s) `;
    const room = Math.max(0, (out.columns || 80) - head.length - 1);
    const message =
      current.message.length > room ? `${current.message.slice(0, Math.max(0, room - 1))}…` : current.message;
    out.write(`\r\x1b[2K${head}${message}`);
  };
  const timer = setInterval(render, 100);
  timer.unref();
  return {
    report: (p) => {
      const done = finalLine(p);
      if (done) {
        out.write(`\r\x1b[2K${done}\n`);
        current = undefined;
        return;
      }
      const same = current?.image === p.image && current.phase === p.phase;
      current = { ...p, since: same && current ? current.since : Date.now() };
      render();
    },
    stop: () => {
      clearInterval(timer);
      if (current) out.write('\r\x1b[2K');
      current = undefined;
    },
  };
}
