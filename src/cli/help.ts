// The text of `gatehouse --help` and `gatehouse <command> --help`.

export const MAIN_HELP = `Gatehouse — one authenticated endpoint for a fleet of MCP servers.

Usage:
  gatehouse serve [--config PATH] [--bind HOST:PORT] [--insecure]   run the gateway
  gatehouse check [--config PATH]                                   validate a configuration
  gatehouse reload [--config PATH]                                  reload a running server's configuration
  gatehouse doctor https://mcp.example.com/mcp                      check discovery as Claude.ai, ChatGPT… do
  gatehouse hash-token [TOKEN]                                      print a sha256: key for bearer.tokens
  gatehouse clients list|show ID|revoke ID [--state PATH] [--json]  manage registered OAuth clients
  gatehouse keys rotate [--config PATH] [--state PATH]              start signing with a new key
  gatehouse sessions list | revoke ID | revoke subject:USER          browser sessions of the login methods
                                      (clients, keys, sessions: --config PATH and --state PATH, the state file)
  gatehouse state export > FILE | state import < FILE               move the state between the file and Redis
  gatehouse hash-password [PASSWORD]                                an argon2id hash for a local account
  gatehouse --version                                               print the version
  gatehouse <command> --help                                        help for one command

Configuration is servers.json (the format of \`mcp serve\`): --config, else $MCP_SERVERS_CONFIG (inline JSON),
else $MCP_CONFIG_PATH, else $MCP_CONFIG_DIR/servers.json, else env-only mode when $OIDC_ISSUER_URL is set, else
~/.config/mcp/servers.json (where mcp serve looks), else ./servers.json (both at once: refused, say which).
serve logs the file it used (config=…), check prints it. See README.md.

Env-only mode (one backend, tokens from your identity provider; mcp-oauth-proxy's variables):
  OIDC_ISSUER_URL, OIDC_AUDIENCE, RESOURCE_URL, ALLOW_SUBS | ALLOW_EMAILS | ALLOW_GROUPS,
  MCP_UPSTREAM_URL | MCP_SPAWN_CMD + MCP_SPAWN_PORT, MCP_UPSTREAM_PATH, PORT, RATE_LIMIT_RPM,
  CORS_ALLOW_ORIGINS, STATIC_CLIENT_ID + STATIC_CLIENT_SECRET, SCOPES_SUPPORTED
  (\`gatehouse check\` prints the equivalent servers.json)

Environment:
  LOG_LEVEL / MCP_LOG_LEVEL    debug | info | warn | error (default info; trace and fatal are accepted)
  MCP_LOG_FORMAT               text | json (default text)
`;

export const SERVE_HELP = `Usage: gatehouse serve [--config PATH] [--bind HOST:PORT] [--insecure] [--log-level LEVEL] [--log-format text|json]

Runs the gateway: MCP Streamable HTTP at /mcp (every backend also at /servers/<name>/mcp), the 2024-11-05
HTTP+SSE transport at /mcp/sse, forward auth at /authenticate, health at /health.

  --config PATH       servers.json to load (default: $MCP_SERVERS_CONFIG, $MCP_CONFIG_PATH,
                      $MCP_CONFIG_DIR/servers.json, env-only mode when $OIDC_ISSUER_URL is set,
                      ~/.config/mcp/servers.json, ./servers.json); the "listening" line names it (config=…)
  --bind HOST:PORT    address to listen on (default 127.0.0.1:8080, in env-only mode 0.0.0.0:$PORT; ":8080"
                      means every interface)
  --insecure          allow a non-loopback address. Gatehouse speaks plain HTTP: in production put a TLS reverse
                      proxy in front and keep the default loopback bind.
  --log-level LEVEL   debug | info | warn | error (default: $LOG_LEVEL, $MCP_LOG_LEVEL, info)
  --log-format FMT    text | json (default: $MCP_LOG_FORMAT, text)

SIGTERM or SIGINT stops accepting connections, lets requests in flight finish (up to gateway.shutdownGrace,
default 10s), stops every backend process and exits 0. SIGHUP reloads the configuration (see gatehouse reload
--help); it never stops the process. Every answer carries X-Request-Id (the caller's, or a new one), which the
log lines and audit records of that request carry too.

Health: GET /health (summary; "degraded" naming a failing backend or the state store), /livez (alive), /readyz
(503 until the state store can write).
`;

export const RELOAD_HELP = `Usage: gatehouse reload [--config PATH]

Asks the running server that uses this configuration (through its admin socket beside the state file) to reload
servers.json, as SIGHUP (systemctl reload gatehouse) and gateway.watchConfig do. The new configuration is checked
completely first: with any problem nothing changes, and the problems are printed (exit 1). Otherwise backends
added start, removed ones stop once their calls finish, changed ones restart; the ACL, tokens, route policy,
scopes, sign-in methods and limits apply from the next request; open sessions and streams stay, and are told the
lists changed. Keys and state are untouched. Settings that need a restart (state) keep their running value and
are named. Exit 0 when reloaded.
`;

export const CHECK_HELP = `Usage: gatehouse check [--config PATH]

Validates the configuration and prints every problem with its JSON path, what was found and what was expected.
Prints which file it read and how it found it (the same search as serve: see gatehouse --help), and any warning.
Exits 0 when the configuration is valid, 1 otherwise. Nothing is started.
`;

export const HASH_TOKEN_HELP = `Usage: gatehouse hash-token [TOKEN]

Prints the key to put in serverAuth.bearer.tokens so the token itself need not be stored in servers.json:

  "tokens": { "sha256:<hex>": "alice" }

The token is read from the argument, else from standard input. With neither (an interactive terminal),
a new random token is generated and printed together with its key.
`;

export const CLIENTS_HELP = `Usage: gatehouse clients list [--json]
       gatehouse clients show CLIENT_ID
       gatehouse clients revoke CLIENT_ID
       (each takes --config PATH, as serve does, and --state PATH: the state file, as $MCP_AUTH_SERVER_PATH)

Lists, shows or revokes the OAuth clients registered with the authorization server (oauthAs). Revoking deletes the
registration with its consents and revokes every grant: its refresh and access tokens stop working at once.
While Gatehouse runs the commands go through its admin socket (<state file>.sock); otherwise they edit the state
file (auth_server.json beside the config, or $MCP_AUTH_SERVER_PATH) directly. With state.redis they work on the
shared state in Redis, and every replica sees the change at once. A command that finds no state file where it looks
says where it looked, and changes nothing (it never starts an empty state).
`;

export const KEYS_HELP = `Usage: gatehouse keys rotate [--config PATH] [--state PATH]
       (--state PATH: the state file, as $MCP_AUTH_SERVER_PATH, when it is not beside the config)

Starts signing access tokens with a newly generated key (ES256, or RS256 with oauthAs.signingAlgorithm). The
previous key stays published and keeps verifying the tokens it signed until they expire, so nobody is logged out.
Keys also rotate on their own every oauthAs.signingKeyRotation ("12h", "30d"; or signingKeyRotationDays; default 30
days). With oauthAs.jwtSecret (HS256) there is nothing to rotate: change the secret instead (which invalidates every
token).
`;

export const SESSIONS_HELP = `Usage: gatehouse sessions list [--json]
       gatehouse sessions revoke SESSION_ID
       gatehouse sessions revoke subject:USER
       (each takes --config PATH, and --state PATH: the state file, as $MCP_AUTH_SERVER_PATH)

The browser sessions of users who signed in through oauthAs.logins. Revoking one makes that browser sign in again
before it can authorize another app (tokens already issued keep working: revoke the app with gatehouse clients).
`;

export const HASH_PASSWORD_HELP = `Usage: gatehouse hash-password [PASSWORD]

Prints an argon2id hash for a local account (oauthAs.logins, type "local"):

  "users": { "alice": { "passwordHash": "$argon2id$v=19$…", "groups": ["admins"] } }

The password is read from the argument, else from standard input (echo -n 'secret' | gatehouse hash-password).
`;

export const STATE_HELP = `Usage: gatehouse state export [--config PATH] > state.json
       gatehouse state import [--config PATH] < state.json

Moves every durable record of the authorization server — clients, consents, grants, refresh tokens, signing keys,
revoked access tokens, browser sessions, generated secrets — between the stores a configuration names: the JSON
file (auth_server.json, the default) and Redis (state.redis). The file format is that of auth_server.json.

  export   writes the state to standard output. Safe while Gatehouse runs (the file is read, never locked).
  import   reads a state from standard input into an empty store (one with no client, grant or key yet), so
           nothing is overwritten. Into the file store, stop Gatehouse first (it holds the file's lock).

A home server growing into replicas: export with the current servers.json, add "state": {"redis": …} to it, import.
The way back: export with the Redis configuration, remove "state", import (the file must not exist yet).
The export holds private signing keys and the hashes of tokens: keep it as private as the state itself.
`;
