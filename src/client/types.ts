/** Wire shapes of Vault's HTTP API as leasehold serves them (see /work/shared/API.md). */

/** The `auth` block of logins, token creation and token renewal. */
export interface VaultAuth {
  client_token: string;
  accessor: string;
  policies: string[] | null;
  token_policies: string[] | null;
  identity_policies?: string[] | null;
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: string;
  orphan: boolean;
}

/** Present when a response was response-wrapped. */
export interface VaultWrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

/** The envelope every successful non-204 answer under `/v1/` uses. `lease_duration` is in seconds. */
export interface VaultResponse<TData = Record<string, unknown>> {
  request_id: string;
  lease_id: string;
  renewable: boolean;
  lease_duration: number;
  data: TData | null;
  wrap_info: VaultWrapInfo | null;
  warnings: string[] | null;
  auth: VaultAuth | null;
  mount_type?: string;
}

/** `data` of a list operation. */
export interface VaultListData {
  keys: string[];
}

/** `GET sys/seal-status`, which (like all of Vault's seal endpoints) is not wrapped in the envelope. */
export interface SealStatus {
  type: string;
  initialized: boolean;
  sealed: boolean;
  t: number;
  n: number;
  progress: number;
  nonce: string;
  version: string;
  build_date?: string;
  migration?: boolean;
  cluster_name?: string;
  cluster_id?: string;
  recovery_seal?: boolean;
  storage_type?: string;
  ha_enabled?: boolean;
}

/** `POST sys/init`. */
export interface InitResponse {
  keys: string[];
  keys_base64: string[];
  root_token: string;
}
