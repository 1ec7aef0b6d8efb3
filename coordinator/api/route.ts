/**
 * The one adapter every REST route passes through (STYLE.md rule 5): it validates params,
 * query and body with zod (unknown keys refused, errors naming the field), calls the service
 * function, and leaves error mapping to the server's single error handler.
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { badInput } from '../../common/errors/errors.ts';

export interface RouteSpec<P, Q, B, R> {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  /** @default 200 */
  readonly status?: number;
  readonly handler: (input: { params: P; query: Q; body: B }) => Promise<R>;
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (schema === undefined) return undefined as T;
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path ?? [];
  // Unrecognised keys name the key itself, so the caller knows which field to remove.
  const keysIssue = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const field = [...path, ...(keysIssue === undefined ? [] : [keysIssue])].join('.') || where;
  throw badInput(field, issue?.message ?? 'invalid', { in: where });
}

export function route<P, Q, B, R>(app: FastifyInstance, spec: RouteSpec<P, Q, B, R>): void {
  app.route({
    method: spec.method,
    url: spec.url,
    handler: async (request, reply) => {
      const input = {
        params: parse(spec.params, request.params, 'params'),
        query: parse(spec.query, request.query, 'query'),
        body: parse(spec.body, request.body, 'body'),
      };
      const result = await spec.handler(input);
      return reply.code(spec.status ?? 200).send(result);
    },
  });
}
