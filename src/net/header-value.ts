// Values Gatehouse puts in HTTP headers it builds from identities (a subject, roles, groups).

/** Header values must not carry control characters (RFC 9110 §5.5): a subject with CR/LF cannot inject headers. */
export function headerValue(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  return value.replace(/[\u0000-\u001f\u007f]/g, "");
}
