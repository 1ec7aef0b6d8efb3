export { createApiClient, errorFromResponse } from './client.ts';
export type { ApiClient, ApiClientOptions, FetchLike } from './client.ts';
export * from './types.ts';
