/** The site file's shape (CLI.md "The site file"): unknown keys are refused everywhere. */
import { z } from 'zod';

/** Names of the fabric: printable, no "/" (they become store keys and URI parts). */
const name = z
  .string()
  .min(1)
  .max(80)
  .refine((v) => !v.includes('/') && !/\p{Cc}/u.test(v), 'a name has no "/" or control characters');

export const siteSchema = z
  .object({
    server: z
      .string()
      .regex(
        /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/,
        'a server name is 1-63 of A-Z, a-z, 0-9, ".", "_" and "-"',
      ),
    clouds: z.array(z.object({ name, hostGroups: z.array(name) }).strict()),
    hostGroups: z.array(z.object({ name }).strict()),
    hosts: z.array(
      z
        .object({
          name,
          hostGroup: name,
          osVersion: z.string().optional(),
          defaultStorage: z.string().optional(),
          address: z.string().optional(),
        })
        .strict(),
    ),
    logicalNetworks: z.array(z.object({ name, clouds: z.array(name) }).strict()).default([]),
    vmNetworks: z
      .array(
        z
          .object({
            name,
            logicalNetwork: name,
            subnets: z.array(z.object({ name, prefix: z.string() }).strict()).default([]),
          })
          .strict(),
      )
      .default([]),
    storageClassifications: z
      .array(
        z
          .object({
            name,
            locations: z.array(z.object({ host: name, path: z.string() }).strict()),
          })
          .strict(),
      )
      .default([]),
    vms: z
      .array(
        z
          .object({
            name,
            host: name,
            state: z.enum(['running', 'stopped']).default('stopped'),
            disks: z.array(
              z.object({ size: z.string(), classification: name.optional() }).strict(),
            ),
            nics: z
              .array(z.object({ network: name, subnet: name.optional() }).strict())
              .default([]),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

export type SiteFile = z.infer<typeof siteSchema>;
