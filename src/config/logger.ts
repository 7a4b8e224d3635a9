import pino, { type Logger } from 'pino';
import type { Config } from './schema.js';

/** JSON logs by default; pretty when writing to a terminal (or logFormat: pretty). */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY);
  if (pretty) {
    return pino({
      level: config.logLevel,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level: config.logLevel });
}
