import { z } from 'zod';

/**
 * The configuration file's schema. Every key carries a description: docs/config-reference.md is
 * generated from these, and a test fails when a key has none.
 */

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'expected "host:port", for example "127.0.0.1:3306"')
  .describe('An address as host:port.');

export const secretRefSchema = z
  .union([
    z.string().min(1).describe('The value inline (allowed, but prefer env or file).'),
    z.strictObject({ env: z.string().min(1).describe('Name of an environment variable holding the value.') }),
    z.strictObject({
      file: z.string().min(1).describe('Path of a file holding the value (trailing newline ignored); relative to the config file.'),
    }),
  ])
  .describe('A secret: a string, {env: NAME} or {file: PATH}.');

const userSchema = z
  .strictObject({
    user: z.string().min(1).describe('Account name.'),
    password: secretRefSchema.optional().describe('Password: {env: NAME}, {file: PATH} or inline; omit for none.'),
  })
  .describe('An account Regent uses.');

const credentialsSchema = z
  .strictObject({
    manager: userSchema.optional().describe('The account Regent connects with to observe and act (see `regent grants`).'),
    replication: userSchema.optional().describe('The account replicas use to connect to their source (the user of their replication channel).'),
    clone: userSchema
      .optional()
      .describe('The account `regent clone` loads data into a target with (needs to create and fill the application databases); defaults to the manager account.'),
    router: userSchema
      .optional()
      .describe("The SQL endpoint's service account: reads the account hashes it verifies logins against (SELECT on mysql.global_priv, MySQL: mysql.user); defaults to the manager account."),
  })
  .describe('Accounts, for all clusters unless a cluster overrides them.');

const instanceSchema = z
  .strictObject({
    host: z.string().min(1).describe('Host name or IP address Regent and the replicas use to reach the server.'),
    port: z.number().int().min(1).max(65535).default(3306).describe('TCP port of the server.'),
    name: z.string().min(1).optional().describe('Short name for output (defaults to host:port).'),
    dataCenter: z.string().min(1).optional().describe('Data center or zone; failover prefers a candidate in the old primary\'s data center on ties.'),
    promotion: z
      .enum(['prefer', 'neutral', 'never'])
      .default('neutral')
      .describe('Promotion rule: prefer wins ties, never is not promoted (it may still feed a candidate that is behind it).'),
    labels: z.record(z.string(), z.string()).default({}).describe('Free-form labels, shown in status and the API.'),
    socket: z.string().min(1).optional().describe('Unix socket for tools run on the same host (sandbox); Regent itself connects over TCP.'),
  })
  .describe('One MySQL or MariaDB server.');

const monitorSchema = z
  .strictObject({
    probeIntervalMs: z.number().int().min(50).default(500).describe('How often each instance is probed over its persistent connection.'),
    connectTimeoutMs: z.number().int().min(50).default(1000).describe('Timeout of a probe connection attempt (a frozen server accepts TCP but never greets).'),
    queryTimeoutMs: z.number().int().min(50).default(1000).describe('Timeout of one probe query.'),
    lagThresholdSeconds: z.number().min(0).default(10).describe('A replica further behind than this is reported as lagging (and leaves the reader pool).'),
  })
  .describe('How Regent watches the instances.');

const failoverSchema = z
  .strictObject({
    automatic: z.boolean().default(true).describe('Fail over a dead primary automatically; when false, problems are only reported.'),
    blockPeriodSeconds: z.number().int().min(0).default(3600).describe('After a failover, no automatic failover of this cluster for this long unless acknowledged (regent ack).'),
    confirmReplicaSilenceMs: z
      .number()
      .int()
      .min(0)
      .default(1200)
      .describe('A replica whose IO thread still looks connected counts as having lost the primary when it received no event and no heartbeat for this long.'),
    hangToleranceMs: z
      .number()
      .int()
      .min(0)
      .default(3000)
      .describe(
        'How long a primary that stops answering without refusing connections (a stall: VM pause, fsync stall, SIGSTOP, a host gone without a reset) must stay silent, to Regent and to its replicas, before it is declared dead. A crash, seen as a refused connection, is acted on at once whatever this says. Shorter fails over sooner after a real hang; longer rides out longer stalls (see docs/runbooks.md).',
      ),
    drainTimeoutSeconds: z.number().min(0.1).default(30).describe('How long replicas may take to apply their relay logs before promotion.'),
    maxLagForCandidateSeconds: z
      .number()
      .min(0)
      .optional()
      .describe('Refuse a candidate whose SQL thread is more than this far behind after draining (unset: no limit, draining decides).'),
  })
  .describe('Automatic failover policy.');

const replicationSchema = z
  .strictObject({
    heartbeatPeriodSeconds: z.number().min(0.05).max(4294967).default(0.5).describe('MASTER_HEARTBEAT_PERIOD Regent sets when it points a replica at a source; lets silence be noticed quickly.'),
    semiSync: z.boolean().default(true).describe('Use semi-synchronous replication (the primary waits for one replica to acknowledge each commit).'),
    semiSyncTimeoutMs: z.number().int().min(1).default(5000).describe('rpl_semi_sync_master_timeout set on a promoted primary.'),
  })
  .describe('Replication settings Regent applies when it (re)points replicas.');

const switchoverSchema = z
  .strictObject({
    maxLagSeconds: z.number().min(0).default(5).describe('Refuse a switchover to a replica further behind than this.'),
    maxTransactionSeconds: z.number().min(0).default(10).describe('Refuse a switchover while a write transaction older than this runs on the primary.'),
    graceMs: z.number().int().min(0).default(200).describe('After read_only is set, client sessions get this long to finish before they are killed.'),
    catchUpTimeoutSeconds: z.number().min(0.1).default(10).describe('How long the target may take to apply everything the old primary wrote; past it the switchover rolls back.'),
  })
  .describe('Planned switchover policy.');

const rejoinSchema = z
  .strictObject({
    automatic: z.boolean().default(true).describe('Rejoin a former primary as a replica as soon as it is back (otherwise only on `regent rejoin`).'),
    errant: z
      .enum(['manual', 'flashback'])
      .default('manual')
      .describe('A former primary with errant transactions: manual keeps it fenced and reports them; flashback saves them to a file, reverses them and rejoins.'),
  })
  .describe('What happens when a former primary comes back.');

const repairSchema = z
  .strictObject({
    restartStoppedReplication: z.boolean().default(true).describe('Restart replication on a replica whose threads stopped without an error (never one stopped on an error).'),
    repointStrayReplicas: z.boolean().default(true).describe('Re-point a replica that still replicates from a former primary to the current one.'),
    afterSeconds: z.number().min(0).default(10).describe('How long a replica stays stopped or stray before it is repaired (time for a DBA who did it on purpose).'),
  })
  .describe('Automatic repair of replicas.');

const hooksSchema = z
  .strictObject({
    preFailover: z.array(z.string()).default([]).describe('Commands run before a failover; a non-zero exit aborts it.'),
    postFailover: z.array(z.string()).default([]).describe('Commands run after a successful failover.'),
    failoverFailed: z.array(z.string()).default([]).describe('Commands run after a failed failover.'),
    timeoutSeconds: z.number().min(0.1).default(10).describe('Each hook command is killed after this long (a pre-failover hook that times out aborts).'),
  })
  .describe('Shell commands run around recoveries, with REGENT_CLUSTER, REGENT_OLD_PRIMARY, REGENT_NEW_PRIMARY in their environment.');

const sqlEndpointSchema = z
  .strictObject({
    listen: hostPort.describe('Listen address of the SQL-aware endpoint: one address for the application; reads go to replicas, everything else to the primary (docs/sql-endpoint.md).'),
    causalReads: z
      .enum(['none', 'session', 'global'])
      .default('session')
      .describe(
        'Read-your-writes. session: after a session writes, its reads go to a replica only once that replica has applied the GTID of its last write (else they wait, then go to the primary). global: every read sees every write the endpoint saw acknowledged before it started, from any session. none: reads go to any replica in the pool.',
      ),
    causalWaitTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(1000)
      .describe('How long a read waits (MASTER_GTID_WAIT on the replica) for a replica to apply what it must see before going to the primary; replicas further behind than this are not waited for.'),
    hints: z
      .boolean()
      .default(true)
      .describe('Honour routing hints in statements: a comment `/* regent:primary */` sends the statement to the primary; `/* regent:replica */` lets a statement the classifier is unsure about (a stored function, say) go to a replica. Writes, locks and transactions never go to a replica.'),
    maxPacketBytes: z
      .number()
      .int()
      .min(1 << 20)
      .max(1 << 30)
      .default(32 << 20)
      .describe('Largest packet (statement) a client may send; a bigger one gets error 1153 and the session is closed. Packets over 16 MiB (several frames) are supported up to this.'),
    connectTimeoutMs: z.number().int().min(50).default(2000).describe('Timeout of opening a backend connection (TCP, handshake, login) for a session.'),
    transactionReplay: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Replay a transaction interrupted before its COMMIT (primary lost, or a switchover that outlasted switchover.graceMs) on the new primary, statement by statement; the client goes on only if every result matches what it received (docs/sql-endpoint.md).'),
        maxBytes: z.number().int().min(0).default(1 << 20).describe('A transaction whose statements add up to more bytes than this is not replayed (its session gets an error if it is interrupted).'),
        maxStatements: z.number().int().min(0).default(1000).describe('A transaction of more statements than this is not replayed.'),
        unsafeFunctions: z
          .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
          .default(['RAND', 'UUID', 'UUID_SHORT', 'SYS_GUID', 'SYSDATE', 'CONNECTION_ID', 'GET_LOCK', 'SLEEP'])
          .describe('A transaction that calls one of these functions is not replayed: a replay would write or return other values than the interrupted run did. NOW()/CURRENT_TIMESTAMP are not in the default list: a replayed write stores the replay time, as a retried transaction would, and a result the client received that differs is caught by the checksum anyway; add them to refuse such transactions outright.'),
      })
      .prefault({})
      .describe('Transaction replay after a failover or a late switchover (issue 15).'),
    accountRefreshSeconds: z.number().min(1).default(60).describe('How often the account hashes are read again (they are also re-read when a login fails).'),
    passwords: z
      .record(z.string(), secretRefSchema)
      .default({})
      .describe('Passwords of application accounts that use another plugin than mysql_native_password (ed25519, caching_sha2_password), by user name: the router cannot verify those from a hash. Accounts with such plugins and no password here are refused at login with a message saying so.'),
    tls: z
      .strictObject({
        cert: z.string().min(1).describe('PEM certificate (chain) the endpoint presents to clients; relative to the config file.'),
        key: z.string().min(1).describe('PEM private key of the certificate.'),
        mode: z.enum(['optional', 'required']).default('optional').describe('required: clients without TLS are refused at login (error 3159); optional: clients choose.'),
      })
      .optional()
      .describe('TLS between clients and the endpoint.'),
    backendTls: z
      .strictObject({
        ca: z.string().min(1).optional().describe('PEM file of the CA that signed the servers\' certificates; relative to the config file (default: the system CAs).'),
        verify: z.boolean().default(true).describe('Verify the server certificate (and host name).'),
        required: z.boolean().default(false).describe('Refuse a backend that does not offer TLS (otherwise such a server is used without it).'),
      })
      .optional()
      .describe('TLS between the endpoint and the servers.'),
  })
  .describe('The SQL-aware endpoint (MySQL protocol): read/write split with read-your-writes.');

const routerSchema = z
  .strictObject({
    writer: hostPort.optional().describe('Listen address of the writer endpoint: every connection goes to the current primary.'),
    reader: hostPort.optional().describe('Listen address of the reader endpoint: connections are spread over healthy replicas.'),
    readerPolicy: z.enum(['round-robin', 'least-connections']).default('round-robin').describe('How the reader endpoint picks a replica.'),
    maxReplicaLagSeconds: z.number().min(0).default(10).describe('A replica further behind than this (or not replicating) gets no new reader connections.'),
    readerFallbackToPrimary: z.boolean().default(true).describe('When no replica qualifies, reader connections go to the primary.'),
    holdTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(10000)
      .describe('While the primary is in doubt or changing, new writer connections wait this long for the new primary before being closed.'),
    healthCheckListen: z.string().min(1).default('127.0.0.1').describe('Address of the per-instance HTTP health endpoints (for HAProxy).'),
    healthCheckBasePort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('First port of the per-instance HTTP health endpoints: instance i (0-based, config order) answers on basePort+i with /primary and /replica.'),
    haproxySocket: z.string().min(1).optional().describe('HAProxy admin socket: Regent pushes server states through it so HAProxy never sends a write to a replica.'),
    sql: sqlEndpointSchema.optional().describe('The SQL-aware endpoint, beside the writer and reader endpoints (off unless set).'),
  })
  .describe('The built-in router and HAProxy integration.');

const discoverySchema = z
  .strictObject({
    scanIntervalSeconds: z
      .number()
      .int()
      .min(0)
      .default(60)
      .describe('How often the leading manager asks every instance which replicas registered with it (SHOW SLAVE HOSTS / SHOW REPLICAS), to notice a replica attached outside Regent; 0: never.'),
    addReplicas: z
      .boolean()
      .default(false)
      .describe('Add a noticed replica that Regent can reach to the cluster by itself (the YAML with the local backend, the etcd inventory otherwise); when false it is reported with the command that adds it.'),
  })
  .describe('Noticing replicas attached to the cluster after it was registered.');

const clusterSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - only, starting with a letter or digit').describe('Cluster name, unique in the file.'),
    primary: hostPort.optional().describe('The intended primary as host:port: used by bootstrap; at run time the topology decides.'),
    instances: z.array(instanceSchema).min(1).describe('The servers of this cluster.'),
    credentials: credentialsSchema.optional().describe('Accounts for this cluster (override the top-level credentials).'),
    monitor: monitorSchema.prefault({}).describe('How Regent watches this cluster.'),
    failover: failoverSchema.prefault({}).describe('Failover policy of this cluster.'),
    replication: replicationSchema.prefault({}).describe('Replication settings of this cluster.'),
    hooks: hooksSchema.prefault({}).describe('Hooks of this cluster.'),
    router: routerSchema.prefault({}).describe('Routing for this cluster.'),
    switchover: switchoverSchema.prefault({}).describe('Switchover policy of this cluster.'),
    rejoin: rejoinSchema.prefault({}).describe('Rejoin policy of this cluster.'),
    repair: repairSchema.prefault({}).describe('Replica repair policy of this cluster.'),
    discovery: discoverySchema.prefault({}).describe('Noticing new replicas of this cluster.'),
  })
  .describe('A primary with its replicas.');

const managerSchema = z
  .strictObject({
    stateDir: z.string().min(1).default('.regent-state').describe('Directory for the journal and local state; relative to the config file.'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Log level of the structured log (JSON lines on stderr).'),
    coordination: z
      .discriminatedUnion('backend', [
        z.strictObject({ backend: z.literal('local').describe('One manager; journal and state in stateDir.') }),
        z.strictObject({
          backend: z.literal('etcd').describe('Several managers, one leader elected through an etcd lease.'),
          endpoints: z.array(z.string().regex(/^https?:\/\/[^\s]+$/, 'expected http://host:port')).min(1).describe('etcd client URLs, e.g. http://127.0.0.1:2379.'),
          prefix: z.string().regex(/^\/[^\s]*$/, 'expected a key prefix starting with /').default('/regent').describe('Key prefix of everything Regent stores in etcd (discovery keys are <prefix>/<cluster>/primary and /replicas).'),
          leaseTtlSeconds: z.number().int().min(2).max(60).default(5).describe('Leader lease TTL: a leader cut off from etcd stops acting within this, and another takes over after it.'),
          tls: z
            .strictObject({
              ca: z.string().min(1).describe('PEM file of the CA that signed the etcd server certificates; relative to the config file.'),
              cert: z.string().min(1).optional().describe('Client certificate PEM file, when etcd requires client certificates (--client-cert-auth).'),
              key: z.string().min(1).optional().describe('Private key PEM file of the client certificate.'),
            })
            .optional()
            .describe('TLS to etcd (endpoints must then be https://).'),
          auth: z
            .strictObject({
              user: z.string().min(1).describe('etcd user (needs read/write on the prefix).'),
              password: secretRefSchema.describe('Its password: a string, {env: NAME} or {file: PATH}.'),
            })
            .optional()
            .describe('etcd user authentication (etcdctl auth enable).'),
          primaryLease: z
            .boolean()
            .default(false)
            .describe(
              'Split-brain guard (MoHA style): a manager that cannot reach etcd for longer than the TTL sets the primary read_only, unless it is the only live node; the leader makes it writable again. Trades availability during an etcd outage for safety against a partitioned primary.',
            ),
        }),
      ])
      .default({ backend: 'local' })
      .describe('How managers coordinate: local (one manager) or etcd (several, one leader).'),
    routerProcesses: z
      .union([z.literal('auto'), z.number().int().min(0).max(64)])
      .default('auto')
      .describe(
        "Processes that copy the router endpoints' bytes, for every cluster. The manager itself accepts, decides and holds each connection, then hands it to the least busy of them, so piping can use several cores. 0 pipes on the manager's own event loop, which is the most CPU-efficient under load on a small machine. auto: cores - 2, at most 4 (0 on a machine with 2 cores or fewer).",
      ),
    api: z
      .strictObject({
        listen: hostPort.describe('Address of the HTTP API, dashboard and /metrics. Keep it on loopback or a management network.'),
        token: secretRefSchema.optional().describe('Bearer token required by every mutating endpoint (actions); reads stay open. Without it, actions are refused.'),
        tls: z
          .strictObject({
            cert: z
              .string()
              .min(1)
              .optional()
              .describe('PEM certificate (with its intermediate chain) `regent run` serves the API and dashboard with; relative to the config file. It must name the host of `listen` (subjectAltName), since clients check it against that.'),
            key: z.string().min(1).optional().describe('PEM private key of cert; relative to the config file. Set cert and key together.'),
            ca: z
              .string()
              .min(1)
              .optional()
              .describe(
                "PEM file of the CA that signed the API certificate: the CLI (and anything else calling the API through Regent's client) verifies the manager with it instead of the system CAs; relative to the config file. `--ca FILE` or REGENT_API_CA=FILE override it.",
              ),
          })
          .optional()
          .describe('TLS for the API, dashboard and /metrics: with cert and key the manager serves https only; with ca alone (a CLI host) clients speak https and verify with that CA.'),
      })
      .optional()
      .describe('HTTP API, dashboard and Prometheus metrics of `regent run`.'),
  })
  .describe('The manager process.');

export const configSchema = z
  .strictObject({
    manager: managerSchema.prefault({}).describe('Manager settings.'),
    credentials: credentialsSchema.prefault({}).describe('Accounts used for every cluster unless overridden.'),
    clusters: z
      .array(clusterSchema)
      .default([])
      .describe('The clusters Regent manages. With etcd, clusters registered at run time (regent cluster add) join these; an empty list is a manager waiting for its first cluster.'),
  })
  .describe('Regent configuration file (YAML).');

export type RawConfig = z.infer<typeof configSchema>;
export type RawCluster = z.infer<typeof clusterSchema>;
export type RawInstance = z.infer<typeof instanceSchema>;
export type SecretRef = z.infer<typeof secretRefSchema>;
export type MonitorSettings = z.infer<typeof monitorSchema>;
export type FailoverSettings = z.infer<typeof failoverSchema>;
export type ReplicationSettings = z.infer<typeof replicationSchema>;
export type HookSettings = z.infer<typeof hooksSchema>;
export type RouterSettings = z.infer<typeof routerSchema>;
export type SqlEndpointSettings = z.infer<typeof sqlEndpointSchema>;
export type SwitchoverSettings = z.infer<typeof switchoverSchema>;
export type RejoinSettings = z.infer<typeof rejoinSchema>;
export type RepairSettings = z.infer<typeof repairSchema>;
export type DiscoverySettings = z.infer<typeof discoverySchema>;
