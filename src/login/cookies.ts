// The cookies of the authorization server's pages: the consent form's binding, the login in progress, and the
// browser session. `__Host-` prefixed and Secure on https issuers (and on http://localhost, a secure context for
// browsers); HttpOnly, SameSite=Lax, Path=/ always.

export class Cookies {
  readonly secure: boolean;
  readonly consentName: string;
  readonly loginName: string;
  readonly sessionName: string;

  constructor(
    issuer: string,
    private readonly sessionMaxAgeSeconds: number,
  ) {
    const u = new URL(issuer);
    this.secure = u.protocol === "https:" || u.hostname === "localhost";
    const prefix = this.secure ? "__Host-" : "";
    this.consentName = `${prefix}gatehouse-consent`;
    this.loginName = `${prefix}gatehouse-login`;
    this.sessionName = `${prefix}gatehouse-session`;
  }

  private cookie(name: string, value: string, maxAge: number): string {
    return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${this.secure ? "; Secure" : ""}`;
  }

  consent(value: string): string {
    return this.cookie(this.consentName, value, 600);
  }
  login(value: string): string {
    return this.cookie(this.loginName, value, 600);
  }
  clearLogin(): string {
    return this.cookie(this.loginName, "", 0);
  }
  session(value: string): string {
    return this.cookie(this.sessionName, value, this.sessionMaxAgeSeconds);
  }
  clearSession(): string {
    return this.cookie(this.sessionName, "", 0);
  }

  static read(headers: Headers, name: string): string | undefined {
    for (const part of (headers.get("cookie") ?? "").split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
    return undefined;
  }
}
