// The grant types Gatehouse's token endpoint serves: the one list that metadata, registration, client metadata
// documents and state defaults all use. Implicit and password grants are never offered (RFC 9700 §2.1.2, §2.4).

export const GRANT_TYPES = ["authorization_code", "refresh_token"] as const;

export type GrantType = (typeof GRANT_TYPES)[number];

export function isGrantType(value: string): value is GrantType {
  return (GRANT_TYPES as readonly string[]).includes(value);
}
