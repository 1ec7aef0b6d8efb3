/**
 * The registration key file (R2) that `secondsite key download` writes and a provider reads:
 * one JSON document, mode 0600. Shared by the coordinator (which issues and checks it) and the
 * provider (which pins the CA fingerprint it names and presents it when registering).
 *
 * The file is its own proof of nothing: the coordinator keeps the authoritative record (all
 * fields but the secret, plus the secret's hash) and refuses a file whose fields or secret
 * differ from it.
 */
import { z } from 'zod';

export const KEY_FILE_VERSION = 1;

/** "k-" and 12 hex digits, like the other ids people type (vault v-…, job j-…). */
export const keyIdSchema = z.string().regex(/^k-[0-9a-f]{12}$/, 'not a registration key id');

export const registrationKeyFileSchema = z
  .object({
    version: z.literal(KEY_FILE_VERSION),
    vaultId: z.string().regex(/^v-[0-9a-f]{12}$/, 'not a vault id'),
    vault: z.string().min(1).max(63),
    /** Where the provider dials: the coordinator's HTTPS URL. */
    coordinatorUrl: z.string().url(),
    /** SHA-256 of the coordinator's root CA certificate (DER), 64 lowercase hex digits. */
    caFingerprint: z.string().regex(/^[0-9a-f]{64}$/, 'not a SHA-256 fingerprint'),
    keyId: keyIdSchema,
    /** 32 random bytes, base64url; the coordinator stores only its hash. */
    secret: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'not a key secret'),
    issuedAt: z.string().datetime(),
    expiresAt: z.string().datetime(),
    /** The key registers one server only. */
    singleUse: z.boolean(),
    /** When set, only a server of this name may register with the key. */
    server: z.string().min(1).max(63).nullable(),
  })
  .strict();

export type RegistrationKeyFile = z.infer<typeof registrationKeyFileSchema>;
