/**
 * The hub's command line: the options `parseArgs` accepts and the help text
 * that describes them. docs/hub.md's flag table is generated from these two
 * (`npm run docs:tables`), and a test fails when the table, the help and the
 * options disagree.
 */

/** What `pi-coms-hub` parses (node:util parseArgs options). */
export const HUB_OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  project: { type: "string" },
  "auth-token": { type: "string" },
  store: { type: "string" },
  "sqlite-sync": { type: "string" },
  "lease-ms": { type: "string" },
  "cluster-host": { type: "string" },
  "cluster-port": { type: "string" },
  "advertise-host": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "max-message-bytes": { type: "string" },
  "max-agents": { type: "string" },
  "max-sends-per-sec": { type: "string" },
  "dashboard-content": { type: "string" },
  "max-stream-buffer-bytes": { type: "string" },
  "max-queue": { type: "string" },
  "max-queued-bytes": { type: "string" },
  "max-queued-bytes-per-agent": { type: "string" },
  "max-streams-per-agent": { type: "string" },
  "reap-after-ms": { type: "string" },
  "max-pending-registrations": { type: "string" },
  "stream-grace-ms": { type: "string" },
  "print-token": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const HUB_HELP = `Usage: pi-coms-hub [options]

Run a pi-coms hub: the networked (/coms-net) side of pi-coms, over HTTP(S) + SSE.

Options:
  --host ADDR              bind address (default $PI_COMS_NET_HOST or 127.0.0.1);
                           a non-loopback address needs an explicit token
  --port N                 port (default $PI_COMS_NET_PORT or 0 = chosen by the OS)
  --project NAME           project namespace (default: derived from the current directory)
  --auth-token TOKEN       bearer token (default $PI_COMS_NET_AUTH_TOKEN, else the stored
                           or a newly generated one); prefer the variable: flags show in ps
  --tls-cert FILE          serve HTTPS with this PEM certificate (default $PI_COMS_NET_TLS_CERT)
  --tls-key FILE           and this PEM private key (default $PI_COMS_NET_TLS_KEY)
  --store sqlite|memory|redis://[user:pass@]host:port[/db]
                           durable SQLite store (default), a throwaway in-memory one, or a
                           shared Redis (rediss:// for TLS; default $PI_COMS_NET_REDIS_URL):
                           every hub on the same Redis and token serves the project
  --sqlite-sync normal|full
                           SQLite store: normal (default) survives a killed hub; full also
                           survives an OS crash or power loss, for an fsync per commit
                           (default $PI_COMS_NET_SQLITE_SYNC or normal)
  --lease-ms N             Redis store: how long a dead active hub holds the project before
                           another takes over (default $PI_COMS_NET_LEASE_MS or 5000)
  --cluster-host ADDR      Redis store: bind address of the backend listener the other hubs
                           forward to (default $PI_COMS_NET_CLUSTER_HOST or --host)
  --cluster-port N         and its port (default $PI_COMS_NET_CLUSTER_PORT or 0 = any)
  --advertise-host NAME    the name other hubs reach it by (default $PI_COMS_NET_ADVERTISE_HOST,
                           else the cluster host, or this machine's name for a wildcard)
  --max-message-bytes N    largest prompt or reply accepted (default 262144)
  --max-agents N           most agents registered at once (default 4096)
  --max-sends-per-sec N    new messages per second per agent, bursts of twice that
                           (default $PI_COMS_NET_MAX_SENDS_PER_SEC or 1000; 0 = no limit)
  --dashboard-content on|off
                           prompt/reply previews on the web dashboard
                           (default $PI_COMS_NET_DASHBOARD_CONTENT or on)
  --max-stream-buffer-bytes N
                           cut an inbox stream whose reader is this many bytes behind; it
                           resumes where it was (default $PI_COMS_NET_MAX_STREAM_BUFFER_BYTES
                           or 262144)
  --max-queue N            unanswered messages one recipient may hold; a send past it is
                           refused QUEUE_FULL (default $PI_COMS_NET_MAX_QUEUE or 1000; 0 = no limit)
  --max-queued-bytes N     bytes of unanswered messages and of replies not yet taken by their
                           senders the whole hub may hold (as --max-message-bytes counts them); a send past
                           it is refused QUEUE_FULL (default $PI_COMS_NET_MAX_QUEUED_BYTES or
                           1073741824 = 1 GiB; 0 = no limit)
  --max-queued-bytes-per-agent N
                           each agent's share of that: bytes held for it as a sender (its
                           unanswered messages, its replies not yet taken) and bytes of its
                           queue as a recipient; a send past either is refused QUEUE_FULL, so
                           one agent cannot fill the hub for the others (default
                           $PI_COMS_NET_MAX_QUEUED_BYTES_PER_AGENT or an eighth of
                           --max-queued-bytes; 0 = no share)
  --max-streams-per-agent N
                           inbox streams open at once per agent; a new one past it closes
                           that agent's oldest (default $PI_COMS_NET_MAX_STREAMS_PER_AGENT or 8)
  --reap-after-ms N        remove an agent offline this long, or registered this long without
                           opening its inbox; what was queued to it ends PEER_GONE
                           (default $PI_COMS_NET_REAP_AFTER_MS or 300000; 0 = never)
  --max-pending-registrations N
                           agents registered but not yet connected, at most; more are refused
                           (default $PI_COMS_NET_MAX_PENDING_REGISTRATIONS or 256; 0 = no limit)
  --stream-grace-ms N      an agent whose inbox stream closed and that opens none again within
                           this long is gone: what it was handed and has not answered ends
                           PEER_GONE (default $PI_COMS_NET_STREAM_GRACE_MS or 3000; 0 = only
                           when its presence lapses)
  --print-token            also print the token
  -h, --help               show this help

Files: ~/.pi/coms-net/projects/<project>/ ($PI_COMS_NET_DIR/projects/<project>/):
  server.secret.json (token, 0600), server.json (url, pid, started_at), hub.sqlite (queues).
`;
