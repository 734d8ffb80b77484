// The authorization server's HTML pages: plain, accessible markup with a little inline CSS, no script. Every value
// is escaped; every page forbids framing and referrers (RFC 9700 §4.16, §4.2.4).

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1c1e21; }
  main { max-width: 32rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; }
  h1 { font-size: 1.35rem; margin-top: 0; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
  dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
  ul { padding-left: 1.2rem; } code { background: #f0f1f3; padding: 0 .25rem; border-radius: 3px; }
  .actions { display: flex; gap: 1rem; margin-top: 1.5rem; }
  button { font: inherit; padding: .6rem 1.4rem; border-radius: 6px; border: 1px solid #888; background: #fff; cursor: pointer; }
  button.primary { background: #1f5fbf; border-color: #1f5fbf; color: #fff; }
  button:focus-visible { outline: 3px solid #f4b400; outline-offset: 2px; }
  .warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: .5rem .8rem; }
  input { font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; border: 1px solid #888; border-radius: 4px; }
  .actions { flex-wrap: wrap; }
  .muted { color: #5f6368; font-size: .9rem; }
`;

export function escapeHtml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

export function pageHeaders(formAction = "'self'"): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  };
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · Gatehouse</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

export function errorPage(title: string, detail: string): string {
  return layout(
    title,
    `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p><p class="muted">Gatehouse did not send you back to the app, because the request could not be trusted or completed.</p>`,
  );
}

export interface ConsentView {
  requestId: string;
  csrf: string;
  action: string;
  clientName: string | undefined;
  clientId: string;
  redirectHost: string;
  redirectIsLoopback: boolean;
  /** The signed-in user; undefined when the user signs in after approving (then `logins` are offered). */
  user: string | undefined;
  logins: { id: string; label: string }[];
  /**
   * Optional ones get a checkbox, so the user can grant less than the app asks for; `offered` ones (advertised by
   * the backends, not asked for by the app) start unticked.
   */
  scopes: { name: string; description: string; required: boolean; offered?: boolean }[];
}

export function consentPage(v: ConsentView): string {
  const name = v.clientName ? escapeHtml(v.clientName) : "An unnamed app";
  const warnings: string[] = [];
  if (!v.clientName)
    warnings.push("This app did not give a name. Approve it only if you just started connecting it yourself.");
  if (v.redirectIsLoopback) warnings.push("It will send you back to a program on your own computer.");
  const scopes = v.scopes
    .map((s) => {
      const label = `<code>${escapeHtml(s.name)}</code> — ${escapeHtml(s.description)}`;
      if (s.required) return `<li>${label}</li>`;
      const id = `scope-${escapeHtml(s.name)}`;
      const checked = s.offered ? "" : " checked";
      return `<li><input type="checkbox" form="consent" name="scope" value="${escapeHtml(s.name)}" id="${id}"${checked}> <label for="${id}">${label}</label></li>`;
    })
    .join("");
  const narrowable = v.scopes.some((s) => !s.required);
  const hint = !narrowable
    ? ""
    : v.scopes.some((s) => s.offered)
      ? " (tick what you want to grant, untick what you do not)"
      : " (untick what you do not want to grant)";
  const who = v.user
    ? `<p>You are signed in as <strong>${escapeHtml(v.user)}</strong>. If you allow it, this app can call the tools Gatehouse gives you, on your behalf, until you revoke it.</p>`
    : "<p>If you allow it, you sign in next, and this app can then call the tools Gatehouse gives you, on your behalf, until you revoke it.</p>";
  const approve = v.user
    ? `<button type="submit" name="decision" value="approve" class="primary">Allow</button>`
    : v.logins
        .map(
          (l) =>
            `<button type="submit" name="decision" value="approve:${escapeHtml(l.id)}" class="primary">Allow and sign in with ${escapeHtml(l.label)}</button>`,
        )
        .join("");
  return layout(
    "Allow access?",
    `<h1>Allow <strong>${name}</strong> to use your MCP tools?</h1>
${who}
<dl>
  <dt>App</dt><dd>${name}</dd>
  <dt>Client ID</dt><dd><code>${escapeHtml(v.clientId)}</code></dd>
  <dt>Returns to</dt><dd><strong>${escapeHtml(v.redirectHost)}</strong></dd>
</dl>
${v.scopes.length > 0 ? `<p>It asks for${hint}:</p><ul class="scopes">${scopes}</ul>` : ""}
${warnings.map((w) => `<p class="warning">${escapeHtml(w)}</p>`).join("")}
<form method="post" action="${escapeHtml(v.action)}" id="consent">
  <input type="hidden" name="request_id" value="${escapeHtml(v.requestId)}">
  ${narrowable ? '<input type="hidden" name="narrowable" value="1">' : ""}
  <input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">
  <div class="actions">
    ${approve}
    <button type="submit" name="decision" value="deny">Deny</button>
  </div>
</form>
<p class="muted">Gatehouse remembers your answer for this app. An administrator can revoke it with <code>gatehouse clients revoke</code>.</p>`,
  );
}

export interface PasswordView {
  action: string;
  state: string;
  csrf: string;
  label: string;
  error?: string;
  username?: string;
}

export function passwordPage(v: PasswordView): string {
  return layout(
    "Sign in",
    `<h1>Sign in with ${escapeHtml(v.label)}</h1>
${v.error ? `<p class="warning" role="alert">${escapeHtml(v.error)}</p>` : ""}
<form method="post" action="${escapeHtml(v.action)}" class="stack">
  <input type="hidden" name="state" value="${escapeHtml(v.state)}">
  <input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">
  <p><label for="username">Username</label><br><input id="username" name="username" autocomplete="username" required value="${escapeHtml(v.username ?? "")}"></p>
  <p><label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" required></p>
  <div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>`,
  );
}

export function logoutPage(signedOut: string | undefined, action: string): string {
  if (signedOut !== undefined) {
    return layout(
      "Signed out",
      `<h1>You are signed out</h1><p>${signedOut ? `${escapeHtml(signedOut)} is no longer signed in to Gatehouse in this browser.` : "No one was signed in to Gatehouse in this browser."} Apps you connected keep their access until you revoke them.</p>`,
    );
  }
  return layout(
    "Sign out",
    `<h1>Sign out of Gatehouse?</h1><form method="post" action="${escapeHtml(action)}"><div class="actions"><button type="submit" class="primary">Sign out</button></div></form>`,
  );
}
